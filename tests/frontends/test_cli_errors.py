"""The CLI fuzzed as a new user would: every bad input is one `error:` line (exit 2), found
before any work, and nothing is left behind."""

from __future__ import annotations

import argparse
import io
import pickle
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import FACES, ROOT

FACE = str(FACES / "astronaut_face.png")  # 256 x 256


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ilo_core", "solve", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def assert_one_error_line(out: subprocess.CompletedProcess, message: str) -> None:
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert message in lines[0], lines[0]


class MarkerPayload:
    """Unpickling this would create a file: the proof that code in a checkpoint ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_an_unknown_output_format_is_refused_before_the_solve(tmp_path):
    started = time.perf_counter()
    out = run_cli("--image", FACE, "--task", "denoise", "--out", str(tmp_path / "x.xyz"), "--quiet")
    assert_one_error_line(out, "unknown image format .xyz")
    assert time.perf_counter() - started < 30  # no solve ran (a default solve takes longer)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag, name, message", [
    ("--gif", "p.png", "must end in .gif"),
    ("--report", "r.txt", "must end in .json"),
    ("--save-state", "s.pt", "must end in .safetensors"),
])
def test_other_outputs_must_have_their_format(tmp_path, flag, name, message):
    out = run_cli("--image", FACE, "--task", "denoise", "--out", str(tmp_path / "o.png"), flag, str(tmp_path / name),
                  "--quiet")
    assert_one_error_line(out, message)


def test_an_output_in_a_missing_folder_is_refused(tmp_path):
    out = run_cli("--image", FACE, "--task", "denoise", "--out", str(tmp_path / "nope" / "o.png"), "--quiet")
    assert_one_error_line(out, "output folder does not exist")


def test_a_text_file_as_generator_is_one_clear_line(tmp_path):
    (tmp_path / "g.pt").write_text("hello, I am not a checkpoint\n")
    out = run_cli("--image", FACE, "--task", "denoise", "--generator", str(tmp_path / "g.pt"),
                  "--out", str(tmp_path / "o.png"), "--quiet")
    assert_one_error_line(out, "g.pt is not a generator checkpoint")


def test_a_pickle_with_a_forbidden_global_is_refused_and_nothing_of_it_runs(tmp_path):
    marker = tmp_path / "marker"
    buffer = io.BytesIO()
    torch.save({"g_ema": {"w": torch.zeros(1)}, "payload": MarkerPayload(str(marker))}, buffer)
    (tmp_path / "evil.pt").write_bytes(buffer.getvalue())
    out = run_cli("--image", FACE, "--task", "denoise", "--generator", str(tmp_path / "evil.pt"),
                  "--out", str(tmp_path / "o.png"), "--quiet")
    assert_one_error_line(out, "asks to load io.open")
    assert not marker.exists()
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(MarkerPayload(str(marker))))
    out = run_cli("--image", FACE, "--task", "denoise", "--generator", str(raw), "--out", str(tmp_path / "o.png"),
                  "--quiet")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not marker.exists()


def test_a_rosinality_training_checkpoint_with_args_loads(tmp_path):
    from ilo_core.generators import StyleGAN2Generator
    from ilo_core.checkpoints import load_generator

    g = StyleGAN2Generator(size=8, n_mlp=2)
    with torch.no_grad():
        for i, p in enumerate(g.parameters()):
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(i)) * 0.1)
    state = {k: v for k, v in g.state_dict().items()}
    checkpoint = {"g": state, "d": {"conv.weight": torch.zeros(2)}, "g_ema": state,
                  "g_optim": {"state": {}, "param_groups": [{"lr": 0.002}]}, "d_optim": {},
                  "args": argparse.Namespace(size=8, n_mlp=2, channel_multiplier=2, lr=0.002, path="ffhq/")}
    torch.save(checkpoint, tmp_path / "050000.pt")
    loaded = load_generator(tmp_path / "050000.pt")
    assert loaded.resolution == 8
    for k, v in state.items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_a_mask_of_another_size_is_a_clear_error(tmp_path):
    Image.fromarray(np.full((37, 100), 255, dtype=np.uint8)).save(tmp_path / "mask.png")
    out = run_cli("--image", FACE, "--task", "inpaint", "--mask", str(tmp_path / "mask.png"),
                  "--out", str(tmp_path / "o.png"), "--quiet")
    assert_one_error_line(out, "the mask is 100 × 37 px but the photo is 256 × 256 px")


def test_a_mask_with_the_photos_aspect_ratio_is_resized():
    from ilo_core.photo.images import load_mask

    small = np.zeros((64, 64), dtype=np.uint8)
    small[32:48, 8:40] = 255
    full = np.asarray(Image.fromarray(small).resize((128, 128), Image.NEAREST))
    a = load_mask(Image.fromarray(small), 64, (128, 128))
    b = load_mask(Image.fromarray(full), 64, (128, 128))
    assert torch.equal(a, b) and a.sum() == 16 * 32


@pytest.mark.parametrize("flag, value", [("--observed", "1.5"), ("--observed", "0"), ("--measurements", "10"),
                                         ("--measurements", "abc")])
def test_fractions_take_one_unit_only(tmp_path, flag, value):
    out = run_cli("--image", FACE, "--task", "random-inpaint", flag, value, "--out", str(tmp_path / "o.png"),
                  "--quiet")
    assert_one_error_line(out, "expected a fraction in (0, 1]")


def test_a_bad_choice_is_one_line_not_a_usage_block(tmp_path):
    out = run_cli("--image", FACE, "--task", "deblur", "--out", str(tmp_path / "o.png"))
    assert_one_error_line(out, "invalid choice")


# --- reliability round two: phone photos, special files, one line ------------------------------


def sideways_phone_photo(tmp_path):
    """A JPEG stored sideways with EXIF orientation 6 (200 x 260 px as seen), and the photo as seen."""
    from PIL import Image

    face = Image.open(FACE).convert("RGB").resize((200, 200))
    seen = Image.new("RGB", (200, 260), (90, 120, 150))
    seen.paste(face, (0, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    seen.transpose(Image.Transpose.ROTATE_90).save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path, seen


def test_a_sideways_phone_photo_is_inpainted_with_a_mask_drawn_on_it_as_seen(tmp_path):
    import numpy as np
    from PIL import Image

    photo, seen = sideways_phone_photo(tmp_path)
    mask = np.zeros((260, 200), dtype=np.uint8)
    mask[110:150, 60:140] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    result = run_cli("--image", str(photo), "--mask", str(tmp_path / "mask.png"), "--task", "inpaint",
                     "--align", "center", "--steps", "2,2", "--out", str(tmp_path / "out.png"),
                     "--repaired", str(tmp_path / "repaired.png"), "--quiet")
    assert result.returncode == 0, result.stderr
    repaired = np.asarray(Image.open(tmp_path / "repaired.png").convert("RGB"), dtype=float)
    shown = np.asarray(Image.open(photo).transpose(Image.Transpose.ROTATE_270).convert("RGB"), dtype=float)
    assert repaired.shape == (260, 200, 3)
    rows, cols = np.nonzero(np.abs(repaired - shown).max(axis=2) > 0)
    assert rows.min() >= 110 - 16 and rows.max() < 150 + 16 and cols.min() >= 60 - 16 and cols.max() < 140 + 16


def test_a_mask_of_the_stored_sideways_size_is_one_line_and_no_output_is_written(tmp_path):
    import numpy as np
    from PIL import Image

    photo, _ = sideways_phone_photo(tmp_path)
    Image.fromarray(np.full((200, 262), 255, dtype=np.uint8)).save(tmp_path / "stored.png")
    outputs = [tmp_path / n for n in ("out.png", "crop.png", "repaired.png")]
    result = run_cli("--image", str(photo), "--mask", str(tmp_path / "stored.png"), "--task", "inpaint",
                     "--steps", "2", "--out", str(outputs[0]), "--crop-out", str(outputs[1]),
                     "--repaired", str(outputs[2]), "--quiet")
    assert_one_error_line(result, "the photo is 200 × 260 px")
    assert not any(p.exists() for p in outputs)


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_a_device_or_fifo_given_as_a_file_is_named_as_such_and_never_read(tmp_path, special):
    import os

    path = tmp_path / "special"
    if special == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    for args in (["--image", str(path), "--task", "denoise", "--out", str(tmp_path / "o.png")],
                 ["--image", FACE, "--task", "denoise", "--generator", str(path), "--out", str(tmp_path / "o.png")]):
        assert_one_error_line(run_cli(*args, timeout=120), "not a regular file")


def test_convert_to_a_missing_folder_is_said_before_loading(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ilo_core", "convert", FACE, str(tmp_path / "missing" / "g.safetensors")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert_one_error_line(result, "output folder does not exist")


def test_a_sliver_photo_falls_back_to_the_centre_instead_of_crashing():
    import numpy as np

    from ilo_core.photo.alignment import align

    for shape in ((8, 20000, 3), (20000, 8, 3)):
        assert align(np.full(shape, 128, np.uint8), "landmarks").method == "center"
