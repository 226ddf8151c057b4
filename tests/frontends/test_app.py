"""The Studio page: handlers on bad and good input, and end to end through gradio_client."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import FACES, mask_layer
from ilo_core.frontends.page import (InputError, StopFlag, build_config, crop_preview, new_output_dir, pose_problem,
                                     read_editor, run_job)
from ilo_core.generators import DCGANGenerator

FACE = str(FACES / "astronaut_face.png")


def test_the_painted_alpha_becomes_the_mask_after_the_crop(tmp_path):
    inputs = read_editor({"background": FACE, "layers": [mask_layer(tmp_path)]}, 64)
    assert inputs.photo.size == (64, 64)
    assert 0.05 < inputs.missing.mean() < 0.5


@pytest.mark.parametrize("value, message", [
    (None, "Upload a photo"),
    ({"background": None, "layers": []}, "Upload a photo"),
])
def test_no_photo_is_a_clear_message(value, message):
    with pytest.raises(InputError, match=message):
        read_editor(value, 64)


def test_a_corrupt_file_is_a_clear_message(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="not a readable image"):
        read_editor({"background": str(bad), "layers": []}, 64)


def test_a_huge_image_is_refused_before_decoding(tmp_path):
    big = tmp_path / "big.png"
    Image.new("L", (8000, 6000)).save(big)
    with pytest.raises(InputError, match=r"too large \(8000 × 6000 px; the limit is 40 megapixels\)"):
        read_editor({"background": str(big), "layers": []}, 64)


@pytest.mark.parametrize("mode, make", [
    ("L", lambda: Image.new("L", (100, 90), 128)),
    ("RGBA", lambda: Image.new("RGBA", (100, 90), (10, 20, 30, 100))),
    ("I;16", lambda: Image.fromarray(np.full((90, 100), 40000, dtype=np.uint16))),
    ("CMYK", lambda: Image.new("CMYK", (100, 90), (0, 50, 50, 0))),
])
def test_unusual_image_modes_are_converted(tmp_path, mode, make):
    path = tmp_path / f"img.{'tif' if mode == 'CMYK' else 'png'}"
    make().save(path)
    inputs = read_editor({"background": str(path), "layers": []}, 64)
    assert inputs.photo.mode == "RGB" and inputs.photo.size == (64, 64)


def test_an_empty_or_full_mask_is_a_clear_message(dcgan, tmp_path):
    empty = read_editor({"background": FACE, "layers": []}, 64)
    with pytest.raises(InputError, match="mask is empty"):
        pose_problem(empty, "inpaint", False, observed_pct=10, factor=4, sigma=25, measurements_pct=10, seed=0,
                     device=dcgan.device)
    full = read_editor({"background": FACE, "layers": [mask_layer(tmp_path, (0, 0, 256, 256))]}, 64)
    with pytest.raises(InputError, match="whole photo"):
        pose_problem(full, "inpaint", False, observed_pct=10, factor=4, sigma=25, measurements_pct=10, seed=0,
                     device=dcgan.device)


def test_a_super_resolution_factor_that_does_not_fit_is_a_clear_message(dcgan):
    inputs = read_editor({"background": FACE, "layers": []}, 64)
    with pytest.raises(InputError, match="does not divide"):
        pose_problem(inputs, "super-resolution", False, observed_pct=10, factor=3, sigma=25, measurements_pct=10,
                     seed=0, device=dcgan.device)


def test_out_of_range_controls_are_clear_messages(dcgan):
    common = dict(radii={"state": [0, 300, 600, 1200]}, observed_pct=10, mse_weight=1, lpips_weight=1,
                  geodesic_weight=0, lr=0.1, seed=0)
    with pytest.raises(InputError, match="layer 0 at least one step"):
        build_config(dcgan, "inpaint", "ilo", steps=[0, 50, 50, 50], **common)
    with pytest.raises(InputError, match="learning rates"):
        build_config(dcgan, "inpaint", "ilo", steps=[5, 5], **{**common, "lr": -1})
    with pytest.raises(InputError, match="non-negative"):
        build_config(dcgan, "inpaint", "ilo", steps=[5, 5], **{**common, "radii": {"state": [0, -5, 0, 0]}})
    cfg = build_config(dcgan, "inpaint", "ilo", steps=[5, 5, 0, 50], **common)
    assert cfg.steps == (5, 5) and cfg.radii["state"] == [None, 300.0]


def test_the_lpips_slider_rules_ilo_on_tasks_with_an_image_view(dcgan):
    common = dict(radii={"state": [0, 300, 600, 1200]}, observed_pct=10, mse_weight=1, geodesic_weight=0,
                  lr=0.1, seed=0, steps=[5, 5])
    assert build_config(dcgan, "inpaint", "ilo", lpips_weight=0.7, **common).lpips_weight == 0.7
    assert build_config(dcgan, "inpaint", "ilo", lpips_weight=0, **common).lpips_weight == 0
    assert build_config(dcgan, "compressed-sensing", "ilo", lpips_weight=0.7, **common).lpips_weight == 0
    assert build_config(dcgan, "inpaint", "csgm-mse", lpips_weight=0.7, **common).lpips_weight == 0


def test_the_fill_detail_slider_reaches_averaged_painted_holes_only(dcgan):
    common = dict(radii={"state": [0, 300, 600, 1200]}, observed_pct=10, mse_weight=1, lpips_weight=0,
                  geodesic_weight=0, lr=0.1, seed=0, steps=[5, 5])
    assert build_config(dcgan, "inpaint", "ilo", fill_detail=0.3, **common).estimate.fill_detail == 0.3
    assert build_config(dcgan, "inpaint", "ilo-auto", fill_detail=0, **common).estimate.fill_detail == 0
    assert build_config(dcgan, "inpaint", "ilo", **common).estimate.fill_detail == DCGANGenerator.tuning.fill_detail  # the slider's default
    # random pixels: the mean of several starts too, but not measured with detail: the default (none)
    assert build_config(dcgan, "random-inpaint", "ilo-auto", fill_detail=0.7, **common).estimate.fill_detail == 0
    assert build_config(dcgan, "inpaint", "csgm-mse", fill_detail=0.7, **common).estimate.fill_detail == 0  # one start
    assert build_config(dcgan, "denoise", "ilo", fill_detail=0.7, **common).estimate.fill_detail == 0  # no hole
    with pytest.raises(InputError, match="from 0 to 8"):
        build_config(dcgan, "inpaint", "ilo", fill_detail=-1, **common)


def test_crop_preview_shows_the_crop_and_the_square_on_the_photo():
    image, square, note = crop_preview(FACE, 64, "landmarks")
    assert image.shape == (64, 64, 3) and max(square.shape[:2]) <= 320 and note.startswith("landmarks:")
    assert (square == (255, 0, 255)).all(axis=2).sum() > 100  # the outline is drawn


def test_a_photo_without_a_face_falls_back_and_says_so(tmp_path):
    Image.new("RGB", (300, 200), (90, 140, 200)).save(tmp_path / "sky.png")
    image, square, note = crop_preview(str(tmp_path / "sky.png"), 64, "landmarks")
    assert note.startswith("center:") and "no face found for 'landmarks'" in note


def test_a_run_streams_previews_and_ends_with_files_and_metrics(dcgan, tmp_path):
    inputs = read_editor({"background": FACE, "layers": [mask_layer(tmp_path)]}, 64)
    problem = pose_problem(inputs, "inpaint", False, observed_pct=10, factor=4, sigma=25, measurements_pct=10,
                           seed=0, device=dcgan.device)
    common = dict(radii={"state": [0, 300, 600, 1200]}, observed_pct=10, mse_weight=1, lpips_weight=1,
                  geodesic_weight=0, lr=0.1, seed=0)
    configs = {"ILO": build_config(dcgan, "inpaint", "ilo", steps=[3, 3, 3, 3], **common),
               "CSGM-MSE": build_config(dcgan, "inpaint", "csgm-mse", steps=[3, 3, 3, 3], **common)}
    updates = list(run_job(dcgan, problem, configs, StopFlag(), new_output_dir(), min_interval=0))
    final = updates[-1].final
    assert final is not None and set(final["results"]) == {"ILO", "CSGM-MSE"}
    assert any(u.preview is not None for u in updates[:-1])
    for r in final["results"].values():
        assert r["metrics"]["psnr"] > 5 and all(Path(f).exists() for f in r["files"])
    assert Image.open(final["results"]["ILO"]["files"][1]).n_frames > 1


def test_stop_keeps_the_best_result(dcgan, tmp_path):
    inputs = read_editor({"background": FACE, "layers": []}, 64)
    problem = pose_problem(inputs, "super-resolution", False, observed_pct=10, factor=4, sigma=25,
                           measurements_pct=10, seed=0, device=dcgan.device)
    cfg = build_config(dcgan, "super-resolution", "ilo", steps=[100, 100], radii={"state": [0, 300]},
                       observed_pct=10, mse_weight=1, lpips_weight=0, geodesic_weight=0, lr=0.1, seed=0)
    flag = StopFlag()
    updates = []
    for u in run_job(dcgan, problem, {"ILO": cfg}, flag, new_output_dir(), min_interval=0):
        updates.append(u)
        if len(updates) == 5:
            flag.set()
    final = updates[-1].final
    assert final is not None and "stopped" in final["results"]["ILO"]["note"]
    assert len(updates) < 20


# --- end to end: a launched app driven by gradio_client ---------------------------------


def run_args(client_file, editor, steps=5, method="ILO", **overrides):
    """The /run endpoint's named parameters (the rest keep their defaults)."""
    return dict(editor=editor, task="Inpainting (paint the region)", mode="Simulate: my photo is clean",
                method=method, steps_layer_0=steps, steps_layer_1=steps, steps_layer_2=steps, steps_layer_3=steps,
                **overrides)


def test_end_to_end_upload_mask_run_preview_result_and_gif(served_app, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(served_app, verbose=False)
    editor = {"background": handle_file(FACE), "layers": [handle_file(mask_layer(tmp_path))],
              "composite": handle_file(FACE)}
    job = client.submit(**run_args(handle_file, editor), api_name="/run")
    outputs = job.result(timeout=300)
    previews = [o for o in job.outputs() if o[0] is not None]
    assert len(job.outputs()) > 2 and previews
    files = outputs[7]
    paths = [f if isinstance(f, str) else f.get("path") or f.get("name") for f in files]
    gif = next(p for p in paths if str(p).endswith(".gif"))
    assert Image.open(gif).n_frames > 1
    assert outputs[4] is not None and "PSNR" in outputs[1]


def test_end_to_end_cancel_then_run_again(served_app, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(served_app, verbose=False)
    editor = {"background": handle_file(FACE), "layers": [handle_file(mask_layer(tmp_path))],
              "composite": handle_file(FACE)}
    job = client.submit(**run_args(handle_file, editor, steps=300), api_name="/run")
    time.sleep(4)
    job.cancel()
    time.sleep(1)
    again = client.submit(**run_args(handle_file, editor, steps=3), api_name="/run").result(timeout=300)
    assert again[4] is not None


def test_end_to_end_bad_input_is_an_error_and_the_server_keeps_serving(served_app, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(served_app, verbose=False)
    editor = {"background": handle_file(FACE), "layers": [], "composite": handle_file(FACE)}
    refused = client.predict(**run_args(handle_file, editor), api_name="/run")
    assert "mask is empty" in refused[1]
    ok = client.predict(**{**run_args(handle_file, editor, steps=3),
                           "task": "Super-resolution"}, api_name="/run")
    assert ok[4] is not None


def test_the_controls_adapt_to_a_stylegan_generator(stylegan64):
    import app

    demo = app.build_demo(stylegan64)
    labels = [getattr(b, "label", "") or "" for b in demo.blocks.values()]
    assert any("noises radius" in str(lbl) for lbl in labels)
    assert any("latents radius" in str(lbl) for lbl in labels)
    # the sliders start at the generator's own tuning (the paper's for a StyleGAN-2), not the DCGAN's
    sliders = {str(b.label): b.value for b in demo.blocks.values() if getattr(b, "label", None) and hasattr(b, "value")}
    assert sliders["layer 1: noises radius"] == stylegan64.tuning.radii["noises"][1] == 300.0
    assert sliders["layer 3: state radius"] == stylegan64.tuning.radii["state"][3] == 2000.0
    assert sliders["Geodesic weight"] == stylegan64.tuning.geodesic_weight == 0.01
    assert sliders["Fill detail (px, painted holes)"] == stylegan64.tuning.fill_detail == 0.0
    dcgan_demo = app.build_demo(app.load_generator("default"))
    dcgan_sliders = {str(b.label): b.value for b in dcgan_demo.blocks.values()
                     if getattr(b, "label", None) and hasattr(b, "value")}
    assert dcgan_sliders["layer 3: state radius"] == 1200.0 and dcgan_sliders["Fill detail (px, painted holes)"] == 0.7


def test_a_mask_file_can_replace_painting_and_must_fit_the_photo(tmp_path):
    mask = np.zeros((256, 256), dtype=np.uint8)
    mask[150:200, 60:200] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    inputs = read_editor({"background": FACE, "layers": []}, 64, "box", str(tmp_path / "mask.png"))
    assert 0.05 < inputs.missing.mean() < 0.5 and inputs.painted.sum() == 50 * 140
    Image.fromarray(mask[:100]).save(tmp_path / "wrong.png")
    with pytest.raises(InputError, match="The mask file: the mask is 256 × 100 px"):
        read_editor({"background": FACE, "layers": []}, 64, "box", str(tmp_path / "wrong.png"))


def test_a_saved_result_loads_back_and_re_renders(dcgan, tmp_path):
    from ilo_core.frontends.page import load_saved

    inputs = read_editor({"background": FACE, "layers": [mask_layer(tmp_path)]}, 64)
    problem = pose_problem(inputs, "inpaint", False, observed_pct=10, factor=4, sigma=25, measurements_pct=10,
                           seed=0, device=dcgan.device)
    cfg = build_config(dcgan, "inpaint", "ilo", steps=[3, 3], radii={"state": [0, 300]}, observed_pct=10,
                       mse_weight=1, lpips_weight=0, geodesic_weight=0, lr=0.1, seed=0)
    final = list(run_job(dcgan, problem, {"ILO": cfg}, StopFlag(), new_output_dir(), photo=inputs))[-1].final
    result = final["results"]["ILO"]
    state = next(f for f in result["files"] if f.endswith(".safetensors"))
    image, note = load_saved(state, dcgan)
    assert np.array_equal(image, result["image"]) and note.startswith("Loaded a saved result")
    assert result["files"][0].endswith("_repaired_photo.png")
    assert Image.open(result["files"][0]).size == (256, 256)
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="not a readable result file|cannot be loaded"):
        load_saved(tmp_path / "junk.safetensors", dcgan)


def test_a_slider_released_with_nothing_to_re_run_leaves_the_status_line_alone(served_app, tmp_path):
    """A release before any finished run (or the one that follows a typed value, queued behind a
    Run) once said "Reading the photo…" and so replaced the run's results table for good."""
    from gradio_client import Client, handle_file

    client = Client(served_app, verbose=False)
    editor = {"background": handle_file(FACE), "layers": [handle_file(mask_layer(tmp_path))],
              "composite": handle_file(FACE)}
    job = client.submit(**run_args(handle_file, editor, steps=3), api_name="/retune")
    job.result(timeout=120)
    statuses = [o[1] for o in job.outputs()]
    assert not any("Reading the photo" in str(s) for s in statuses), statuses
