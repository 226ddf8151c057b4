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
    from ilo_core.generators import StyleGAN2Generator, load_generator

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
    from ilo_core.images import load_mask

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
