"""The page fuzzed as a new user would, through gradio_client against a launched app:
bad input gets one sentence and keeps the earlier results, Stop reaches every run of the
session, uploads are refused by their header, outputs go away with the session."""

from __future__ import annotations

import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import FACES, free_port, rss_mb
from ilo_core.frontends.page import OutputFolders, SessionRuns, method_labels

FACE = str(FACES / "astronaut_face.png")
UPDATE = {"__type__": "update"}  # what an output that did not change returns


@pytest.fixture(scope="module")
def page(dcgan, tmp_path_factory):
    """(demo, url, outputs root) of a launched page."""
    import app

    root = tmp_path_factory.mktemp("outputs")
    demo = app.build_demo(dcgan, outputs_root=root)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield demo, f"http://127.0.0.1:{port}/", root
    demo.close()


def client_of(page, download_files: bool = True):
    from gradio_client import Client

    return Client(page[1], verbose=False, download_files=download_files)


def editor(path: str = FACE, painted: bool = True, tmp_path: Path | None = None) -> dict:
    from gradio_client import handle_file

    layers = []
    if painted:
        layer = np.zeros((256, 256, 4), dtype=np.uint8)
        layer[150:200, 60:200] = (255, 0, 255, 255)
        Image.fromarray(layer, "RGBA").save(tmp_path / "layer.png")
        layers = [handle_file(str(tmp_path / "layer.png"))]
    return {"background": handle_file(path), "layers": layers, "composite": handle_file(path)}


def run_args(value: dict, steps: int = 3, **overrides) -> dict:
    args = dict(editor=value, task="Inpainting (paint the region)", mode="Simulate: my photo is clean", method="ILO",
                steps_layer_0=steps, steps_layer_1=steps, steps_layer_2=steps, steps_layer_3=steps)
    return {**args, **overrides}


def write_png_of_zeros(path: Path, width: int, height: int) -> None:
    """A valid 8-bit grey PNG of width x height black pixels, written without holding it in memory."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


# --- bad input: one sentence, nothing lost ------------------------------------------------


def test_compressed_sensing_is_not_offered_the_lpips_baselines():
    assert "CSGM-LPIPS" not in method_labels("compressed-sensing")
    assert "CSGM-MSE+LPIPS" not in method_labels("compressed-sensing")
    assert "CSGM-LPIPS" in method_labels("inpaint")


def test_compressed_sensing_with_an_lpips_baseline_is_a_sentence_not_a_bare_error(page, tmp_path):
    out = client_of(page).predict(**run_args(editor(painted=False, tmp_path=tmp_path), task="Compressed sensing",
                                             method="CSGM-LPIPS"), api_name="/run")
    assert "no image view" in out[1] and out[4] == UPDATE


@pytest.mark.parametrize("name, content, message", [
    ("empty.png", b"", "is empty (0 bytes)"),
    ("corrupt.png", b"\x89PNG\r\n\x1a\n this is no image", "not a readable image"),
    ("truncated.png", None, "truncated or corrupt"),
])
def test_a_bad_upload_is_one_sentence_where_the_crop_would_be(page, tmp_path, name, content, message):
    from gradio_client import handle_file

    path = tmp_path / name
    if content is None:
        Image.open(FACE).save(tmp_path / "whole.png")
        path.write_bytes((tmp_path / "whole.png").read_bytes()[:20_000])
    else:
        path.write_bytes(content)
    value = {"background": handle_file(str(path)), "layers": [], "composite": handle_file(str(path))}
    client = client_of(page)
    crop, square, note = client.predict(value=value, how="box", api_name="/upload")
    assert crop is None and square is None and message in note
    out = client.predict(**run_args(value), api_name="/run")
    assert message in out[1]


def test_the_page_cuts_a_photo_to_the_generators_face_frame_by_default(page, dcgan):
    import gradio as gr
    from gradio_client import handle_file

    from ilo_core.photo.alignment import align, aligned_crop

    radios = [b for b in page[0].blocks.values() if isinstance(b, gr.Radio) and "Face alignment" in (b.label or "")]
    assert len(radios) == 1 and radios[0].value == "landmarks"
    value = {"background": handle_file(FACE), "layers": [], "composite": handle_file(FACE)}
    crop, _, note = client_of(page).predict(value=value, how="landmarks", api_name="/upload")
    photo = np.asarray(Image.open(FACE).convert("RGB"))
    framed, ffhq = align(photo, "landmarks", dcgan.face_frame), align(photo, "landmarks")
    assert note.startswith(framed.describe()) and framed.side < ffhq.side / 1.25  # the DCGAN's tighter frame
    shown = np.asarray(Image.open(crop).convert("RGB"), dtype=float)  # the page sends it as lossy WebP
    expected = np.asarray(aligned_crop(photo, framed, 64), dtype=float)
    assert np.abs(shown - expected).mean() < 4


@pytest.mark.parametrize("seed", ["nan", "inf", "-inf", "1e30", "abc", "1.5", "-3"])
def test_a_bad_seed_is_one_sentence(page, tmp_path, seed):
    out = client_of(page).predict(**run_args(editor(tmp_path=tmp_path), seed=seed), api_name="/run")
    assert "seed must be a whole number" in out[1]


def test_an_input_error_keeps_the_earlier_results_on_screen(page, tmp_path):
    client = client_of(page)
    good = client.predict(**run_args(editor(tmp_path=tmp_path)), api_name="/run")
    assert good[4] is not None and "PSNR" in good[1]
    bad = client.predict(**run_args(editor(painted=False, tmp_path=tmp_path)), api_name="/run")
    assert "mask is empty" in bad[1]
    assert [o for i, o in enumerate(bad) if i != 1] == [UPDATE] * 10  # nothing else was touched


def test_a_new_run_clears_the_previous_images_first(page, tmp_path):
    client = client_of(page)
    client.predict(**run_args(editor(tmp_path=tmp_path)), api_name="/run")
    job = client.submit(**run_args(editor(tmp_path=tmp_path), steps=20), api_name="/run")
    job.result(timeout=300)
    starting = next(o for o in job.outputs() if o[1] == "Starting…")
    assert starting[0] is None and starting[4] is None and starting[6] is None and starting[7] is None
    assert starting[8] is None


# --- Stop -------------------------------------------------------------------------------------


def test_stop_with_nothing_running_changes_nothing(page):
    assert client_of(page).predict(api_name="/stop") == UPDATE


def wait_until_running(job, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any("total" in str(o[1]) for o in job.outputs()):
            return
        time.sleep(0.05)
    raise AssertionError("the run never started")


def test_stop_reaches_the_running_and_the_queued_run_and_the_queued_one_never_starts(page, tmp_path):
    # the server's time: this client does not download the result files (a browser shows them
    # as they come; gradio_client's downloads of the five files took 1.4 s more here)
    client = client_of(page, download_files=False)
    value = editor(tmp_path=tmp_path)
    running = client.submit(**run_args(value, steps=300), api_name="/run")
    wait_until_running(running)
    queued = client.submit(**run_args(value, steps=300), api_name="/run")
    time.sleep(0.5)
    stopped_at = time.monotonic()
    assert client.predict(api_name="/stop") == UPDATE  # a toast says so; the status line is the run's
    first, second = running.result(timeout=300), queued.result(timeout=300)
    # the 1200-step run takes a minute or more; how soon Stop lands is the storm test's measure
    assert time.monotonic() - stopped_at < 30
    assert "stopped" in first[1] and first[4] is not None  # the best result so far is kept
    assert second[1] == "Stopped before it started."
    assert not any("total" in str(o[1]) for o in queued.outputs())


def test_after_stop_the_table_counts_the_steps_done(page, tmp_path):
    client = client_of(page)
    job = client.submit(**run_args(editor(tmp_path=tmp_path), steps=300), api_name="/run")
    wait_until_running(job)
    time.sleep(0.5)
    client.predict(api_name="/stop")
    table = job.result(timeout=300)[1]
    done = int(table.splitlines()[2].split("|")[5])
    assert 0 < done < 1200


@pytest.mark.storm
def test_a_stop_and_rerun_storm_leaves_no_run_behind(page, tmp_path):
    """10 x (Run, Stop after 0.2 s, Run again), 1200-step runs: none outlives its Stop by 2 s."""
    demo = page[0]
    from gradio_client.utils import Status

    from app import waiting_runs

    # a browser shows the outputs as they come; this client does not download them, so that
    # the figure is the server's time, not the client's downloads
    client = client_of(page, download_files=False)
    value = editor(tmp_path=tmp_path)
    jobs: list[tuple[object, float]] = []   # (job, submitted at)
    stops: list[float] = []
    finished: dict[int, float] = {}

    def submit():
        """Press Run: the click counts once it has reached the server's queue (a browser's
        takes milliseconds; gradio_client first uploads the photo and the mask)."""
        job = client.submit(**run_args(value, steps=300), api_name="/run")
        index = len(jobs)
        job.future.add_done_callback(lambda _f, i=index: finished.setdefault(i, time.monotonic()))
        deadline = time.monotonic() + 30
        while Status.ordering(job.status().code) < Status.ordering(Status.IN_QUEUE) and time.monotonic() < deadline:
            time.sleep(0.01)
        jobs.append((job, time.monotonic()))

    for _ in range(10):
        submit()
        time.sleep(0.2)
        stops.append(time.monotonic())
        client.predict(api_name="/stop")
        submit()
    time.sleep(0.2)
    stops.append(time.monotonic())
    client.predict(api_name="/stop")
    for job, _ in jobs:
        job.result(timeout=120)
    time.sleep(0.2)
    lateness = []
    for i, (_, submitted) in enumerate(jobs):
        stop = min(s for s in stops if s > submitted)
        lateness.append(finished[i] - stop)
    print(f"storm: {len(jobs)} runs, latest end after its Stop {max(lateness):.2f} s, "
          f"median {sorted(lateness)[len(lateness) // 2]:.2f} s")
    assert max(lateness) < 2.0
    session = client.session_hash
    assert waiting_runs(demo, session) == 0


# --- resources ----------------------------------------------------------------------------


def test_a_13000_px_upload_is_refused_by_its_header_without_decoding(page, tmp_path):
    from gradio_client import handle_file

    bomb = tmp_path / "bomb.png"
    write_png_of_zeros(bomb, 13000, 13000)
    assert bomb.stat().st_size < 1_000_000
    client = client_of(page)
    value = {"background": handle_file(str(bomb)), "layers": [], "composite": handle_file(str(bomb))}
    before = rss_mb()
    crop, _, note = client.predict(value=value, how="box", api_name="/upload")
    out = client.predict(**run_args(value), api_name="/run")
    grown = rss_mb() - before
    print(f"13000 x 13000 upload: server RSS grew {grown:.1f} MB")
    assert "too large (13000 × 13000 px; the limit is 40 megapixels)" in note
    assert "too large" in out[1] and crop is None
    assert grown < 100


def test_a_decompression_bomb_is_reported_as_too_large(tmp_path):
    from ilo_core.photo.images import ImageError, image_size

    bomb = tmp_path / "huge.png"
    write_png_of_zeros(bomb, 20000, 20000)  # over PIL's own limit: PIL refuses even to open it
    with pytest.raises(ImageError, match="too large"):
        image_size(bomb)


def test_runs_write_into_the_sessions_folder_and_session_end_deletes_it(tmp_path):
    folders = OutputFolders(tmp_path, max_age=3600)
    a, b = folders.new("session-a"), folders.new("session-b")
    (a / "result.png").write_bytes(b"x")
    folders.forget("session-a")
    assert not a.exists() and b.exists()


def test_run_folders_older_than_the_age_limit_are_swept(tmp_path):
    folders = OutputFolders(tmp_path, max_age=60)
    old, new = folders.new("s"), folders.new("s")
    os.utime(old, (time.time() - 120, time.time() - 120))
    assert folders.sweep() == 1
    assert not old.exists() and new.exists()


def test_a_session_id_cannot_name_a_folder_outside_the_root(tmp_path):
    folders = OutputFolders(tmp_path / "root")
    folder = folders.new("../../etc")
    assert folder.resolve().is_relative_to((tmp_path / "root").resolve())


def test_a_stop_pressed_after_a_run_was_queued_keeps_it_from_starting():
    runs = SessionRuns()
    queued_at = time.monotonic()
    runs.stop("s")
    assert runs.start("s", queued_at) is None
    flag = runs.start("s", time.monotonic())
    assert flag is not None and not flag.is_set()
    assert runs.stop("s") == 1 and flag.is_set()
    runs.finish("s", flag)
    assert runs.running("s") == 0


@pytest.mark.storm
def test_solves_run_one_at_a_time_on_a_cpu(page, tmp_path):
    from gradio_client import Client

    clients = [Client(page[1], verbose=False) for _ in range(2)]
    value = editor(tmp_path=tmp_path)
    # different seeds: identical outputs of two sessions at once race in Gradio's file cache
    jobs = [c.submit(**run_args(value, steps=10, seed=i), api_name="/run") for i, c in enumerate(clients)]
    results = [j.result(timeout=300) for j in jobs]
    assert all("PSNR" in r[1] for r in results)
    # the one that waited saw its queue position, and started only after the other finished
    spans = []
    for job in jobs:
        statuses = [o[1] for o in job.outputs()]
        spans.append(statuses)
    assert all(any("total" in s for s in st) for st in spans)
    assert page[0].fns[next(i for i, f in page[0].fns.items() if f.api_name == "run")].concurrency_limit == 1


# --- live re-tuning ----------------------------------------------------------------------


def test_changing_the_last_layers_radius_re_runs_only_that_layer(page, tmp_path):
    client = client_of(page)
    value = editor(tmp_path=tmp_path)
    started = time.perf_counter()
    full = client.predict(**run_args(value, steps=40), api_name="/run")
    full_seconds = time.perf_counter() - started
    assert "PSNR" in full[1]
    started = time.perf_counter()
    job = client.submit(**run_args(value, steps=40, state_radius_layer_3=100.0), api_name="/retune")
    tuned = job.result(timeout=300)
    retune_seconds = time.perf_counter() - started
    statuses = [str(o[1]) for o in job.outputs()]
    print(f"re-tune of layer 3: {retune_seconds:.1f} s against the full run's {full_seconds:.1f} s")
    assert any("Re-running from layer 3" in s for s in statuses)
    assert not any("round 1/" in s or "round 2/" in s or "round 3/" in s for s in statuses)
    assert "PSNR" in tuned[1] and tuned[4] is not None
    # the table counts the re-run layer's steps; the GIF keeps the earlier layers' frames
    assert int(tuned[1].splitlines()[2].split("|")[5]) == 40 and "re-ran from layer 3" in tuned[1]
    full_gif, tuned_gif = Image.open(full[9]), Image.open(tuned[9])
    assert tuned_gif.n_frames >= full_gif.n_frames - 2
    again = client.predict(**run_args(value, steps=40, state_radius_layer_3=100.0), api_name="/retune")
    assert again[1] == UPDATE and again[4] == UPDATE  # nothing changed: the page stays as it is


def test_a_slider_released_before_any_run_changes_nothing(page, tmp_path):
    from gradio_client import Client

    fresh = Client(page[1], verbose=False)
    out = fresh.predict(**run_args(editor(tmp_path=tmp_path), steps=5), api_name="/retune")
    assert out == tuple([UPDATE] * 11)  # the person is still setting up: nothing runs, nothing changes


def test_the_page_shows_where_it_is_guessing(page, tmp_path):
    out = client_of(page).predict(**run_args(editor(tmp_path=tmp_path), steps=10, show_spread=True), api_name="/run")
    assert "inside the hole" in out[1] and out[10] is not None


# --- every format the CLI reads, upright, through the page's API ----------------------------


def upright_face(size: tuple[int, int] = (200, 260)) -> Image.Image:
    """The example face on a taller-than-wide canvas, so that a sideways reading shows."""
    face = Image.open(FACE).convert("RGB").resize((200, 200))
    canvas = Image.new("RGB", size, (90, 120, 150))
    canvas.paste(face, (0, 30))
    return canvas


def write_format(kind: str, path: Path) -> Image.Image:
    """Write the upright face as `kind`; returns what a person sees (8-bit RGB, upright)."""
    upright = upright_face()
    if kind == "jpeg":
        upright.save(path, "JPEG", quality=95)
    elif kind == "progressive-jpeg":
        upright.save(path, "JPEG", quality=95, progressive=True)
    elif kind == "cmyk-jpeg":
        upright.convert("CMYK").save(path, "JPEG", quality=95)
    elif kind in ("exif6-jpeg", "exif6-png"):
        stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a phone held sideways stores
        exif = Image.Exif()
        exif[0x0112] = 6  # "turn 90 degrees clockwise to show"
        stored.save(path, "JPEG" if kind.endswith("jpeg") else "PNG", exif=exif.tobytes(),
                    **({"quality": 95} if kind.endswith("jpeg") else {}))
    elif kind == "16bit-png":
        grey = np.asarray(upright.convert("L"), dtype=np.uint16) * 257
        Image.fromarray(grey, "I;16").save(path)
        upright = upright.convert("L").convert("RGB")
    return upright


FORMATS = ["jpeg", "progressive-jpeg", "cmyk-jpeg", "exif6-jpeg", "exif6-png", "16bit-png"]


@pytest.mark.parametrize("kind", FORMATS)
def test_every_format_the_cli_reads_reaches_the_page_upright(page, tmp_path, kind):
    from gradio_client import handle_file

    path = tmp_path / f"photo.{'png' if kind.endswith('png') else 'jpg'}"
    seen = write_format(kind, path)
    value = {"background": handle_file(str(path)), "layers": [], "composite": handle_file(str(path))}
    crop, square, note = client_of(page).predict(value=value, how="center", api_name="/upload")
    assert crop is not None and "Not used" not in note, note
    outlined = np.asarray(Image.open(square).convert("RGB"))
    height, width = outlined.shape[:2]  # the photo with the square drawn (its line may pad it by a pixel)
    assert abs(height - seen.height) <= 2 and abs(width - seen.width) <= 2  # upright: 260 rows, 200 columns
    side = min(seen.size)
    top = (seen.height - side) // 2
    expected = np.asarray(seen.crop((0, top, side, top + side)).resize((64, 64), Image.LANCZOS), dtype=float)
    got = np.asarray(Image.open(crop).convert("RGB"), dtype=float)
    assert np.abs(got - expected).mean() < 6  # JPEG's loss; sideways or whitened would be > 30


def test_a_painted_phone_photo_stored_sideways_is_repaired_where_it_was_painted(page, tmp_path):
    from gradio_client import handle_file

    path = tmp_path / "phone.jpg"
    seen = write_format("exif6-jpeg", path)
    layer = np.zeros((seen.height, seen.width, 4), dtype=np.uint8)
    layer[110:150, 60:140] = (255, 0, 255, 255)  # over the face, in the photo as shown
    Image.fromarray(layer, "RGBA").save(tmp_path / "layer.png")
    value = {"background": handle_file(str(path)), "layers": [handle_file(str(tmp_path / "layer.png"))],
             "composite": handle_file(str(path))}
    out = client_of(page).predict(**run_args(value, alignment="center"), api_name="/run")
    repaired = np.asarray(Image.open(out[7][0]).convert("RGB"), dtype=float)
    assert repaired.shape[:2] == (seen.height, seen.width)
    shown = np.asarray(Image.open(path).transpose(Image.Transpose.ROTATE_270).convert("RGB"), dtype=float)
    changed = np.abs(repaired - shown).max(axis=2) > 0
    rows, cols = np.nonzero(changed)
    assert changed[110:150, 60:140].mean() > 0.9
    assert rows.min() >= 110 - 16 and rows.max() < 150 + 16 and cols.min() >= 60 - 16 and cols.max() < 140 + 16


# --- the editor's blob route: header checks, bounded memory ---------------------------------


def editor_of(demo):
    import app

    return next(b for b in demo.blocks.values() if isinstance(b, app.CheckedImageMask))


def push_blob(url: str, component: int, session: str, blob_id: str, kind: str, data: bytes, index: int | None = None):
    import httpx

    fields = {"component_id": str(component), "session_hash": session, "fn_name": "accept_blobs", "type": kind,
              "index": "null" if index is None else str(index), "id": blob_id, "data": "{}"}
    return httpx.post(url + "gradio_api/component_server/", data=fields,
                      files={"file": ("blob", data, "application/octet-stream")}, timeout=60)


def test_pushed_blobs_are_bounded_per_session_and_checked_by_their_header(page, tmp_path):
    demo, url, _ = page
    component = editor_of(demo)
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (1400, 1400, 3), dtype=np.uint8))
    buffer = tmp_path / "noise.png"
    noise.save(buffer, compress_level=0)
    data = buffer.read_bytes()  # about 6 MB, a valid image
    before = rss_mb()
    for i in range(40):
        push_blob(url, component._id, "storm-session", f"blob-{i}", "background", data)
    grown = rss_mb() - before
    kept = component.blobs.bytes_kept("storm-session")
    print(f"40 pushes of {len(data) / 1e6:.1f} MB: {kept / 1e6:.1f} MB kept, server RSS grew {grown:.1f} MB")
    assert kept <= component.blobs.per_session
    assert grown < 100
    bomb = tmp_path / "bomb.png"
    write_png_of_zeros(bomb, 13000, 13000)
    push_blob(url, component._id, "bomb-session", "bomb", "layer", bomb.read_bytes(), index=0)
    assert component.blobs.bytes_kept("bomb-session") == 0
    item = component.blobs.take("bomb")
    assert item is not None and "too large (13000 × 13000 px" in item.error
    component.blobs.forget("storm-session")


def test_after_stop_the_status_is_the_runs_own_table_not_a_stopping_line(page, tmp_path):
    client = client_of(page, download_files=False)
    job = client.submit(**run_args(editor(tmp_path=tmp_path), steps=300), api_name="/run")
    wait_until_running(job)
    client.predict(api_name="/stop")
    job.result(timeout=300)
    time.sleep(0.5)  # any late output of the Stop would have arrived
    assert "| method |" in job.outputs()[-1][1] and "Stopping" not in job.outputs()[-1][1]


def test_the_auto_radii_method_is_labelled_whole_and_names_its_downloads(page, tmp_path):
    out = client_of(page).predict(**run_args(editor(tmp_path=tmp_path), steps=2, method="ILO, auto radii"),
                                  api_name="/run")
    names = [Path(f).name for f in out[7]]
    assert "| ILO, auto radii |" in out[1] and "ILO, |" not in out[1]
    assert all(n.startswith("ilo-auto-radii_") for n in names), names


def test_a_simulated_degradation_offers_no_repaired_photo(page, tmp_path):
    out = client_of(page).predict(**run_args(editor(painted=False, tmp_path=tmp_path), task="Super-resolution"),
                                  api_name="/run")
    names = [Path(f).name for f in out[7]]
    assert not any("repaired_photo" in n for n in names) and out[8] is None
    degraded = client_of(page).predict(**run_args(editor(painted=False, tmp_path=tmp_path), task="Denoising",
                                                  mode="My image is already degraded"), api_name="/run")
    assert any("repaired_photo" in Path(f).name for f in degraded[7])


def test_a_large_photo_is_painted_on_a_display_copy_and_repaired_at_its_own_size(page, tmp_path):
    """A 4000 x 3000 photo: the editor gets a 1600 px copy; strokes painted on the copy repair
    the full photo where they were painted, scaled."""
    from gradio_client import handle_file

    big = Image.new("RGB", (4000, 3000), (120, 130, 140))
    big.paste(Image.open(FACE).convert("RGB").resize((1200, 1200)), (1400, 800))
    path = tmp_path / "big.jpg"
    big.save(path, "JPEG", quality=90)
    client = client_of(page)
    value = {"background": handle_file(str(path)), "layers": [], "composite": handle_file(str(path))}
    shown, note = client.predict(value=value, note="", api_name="/display_copy")
    copy = Image.open(shown["background"])
    assert copy.size == (1600, 1200) and "repaired at its own size" in note
    layer = np.zeros((1200, 1600, 4), dtype=np.uint8)
    layer[560:600, 620:780] = (255, 0, 255, 255)  # over the face, in the copy's pixels
    Image.fromarray(layer, "RGBA").save(tmp_path / "layer.png")
    painted = {"background": handle_file(shown["background"]), "layers": [handle_file(str(tmp_path / "layer.png"))],
               "composite": handle_file(shown["background"])}
    out = client.predict(**run_args(painted, steps=2), api_name="/run")
    repaired = np.asarray(Image.open(out[7][0]).convert("RGB"), dtype=float)
    assert repaired.shape == (3000, 4000, 3)  # the photo, not the copy
    rows, cols = np.nonzero(np.abs(repaired - np.asarray(Image.open(path).convert("RGB"), dtype=float)).max(axis=2) > 0)
    assert rows.min() >= 1400 - 40 and rows.max() < 1500 + 40 and cols.min() >= 1550 - 40 and cols.max() < 1950 + 40


def test_sigterm_ends_the_page_and_removes_its_examples_folder(tmp_path):
    """`python app.py` stopped by SIGTERM (a service manager's stop) leaves no temp folder behind."""
    import signal
    import subprocess
    import sys
    import urllib.request

    from conftest import ROOT

    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path), "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("the page never answered")
        assert list(tmp_path.glob("ilo_studio_examples_*"))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert not list(tmp_path.glob("ilo_studio_examples_*"))


def test_the_private_gradio_queue_attributes_the_page_reads_are_still_there():
    """`app.queued_at` and `app.waiting_runs` read Gradio's queue (no public API has when an
    event was queued); a Gradio upgrade that renames them fails here, not silently on the page."""
    import inspect

    import gradio as gr
    from gradio.queueing import Event

    from app import QUEUE_INTERNALS

    with gr.Blocks() as demo:
        gr.Markdown("x")
    queue = getattr(demo, QUEUE_INTERNALS["queue"])
    assert isinstance(getattr(queue, QUEUE_INTERNALS["running"]), list)
    assert isinstance(getattr(queue, QUEUE_INTERNALS["waiting"]), dict)
    assigned = set(Event.__init__.__code__.co_names) | set(inspect.signature(Event.__init__).parameters)
    assert set(QUEUE_INTERNALS["event"]) <= assigned


def test_the_last_run_for_re_tuning_is_gradio_session_state_that_expires_and_lets_go(dcgan):
    """No module-level or closure dict of sessions: the last run lives in a `gr.State` with a
    time to live, and its delete callback lets go of the solvers."""
    import gradio as gr

    import app

    demo = app.build_demo(dcgan)
    states = [b for b in demo.blocks.values() if isinstance(b, gr.State)]
    assert len(states) == 1
    assert states[0].time_to_live == app.RETUNE_SECONDS and states[0].delete_callback is app.forget_run
    run = {"solvers": {"ILO": object()}, "problem": object()}
    app.forget_run(run)
    assert run == {}
    app.forget_run(None)  # a session that never finished a run
