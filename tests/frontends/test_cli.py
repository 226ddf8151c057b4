"""The CLI contract: `python -m ilo_core solve ...`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import FACES, run_cli, write_mask


def test_cli_inpaints_with_a_mask_and_writes_png_gif_report_and_state(tmp_path):
    write_mask(tmp_path / "mask.png", (128, 128), slice(70, 100), slice(20, 108))
    out = run_cli("--image", str(FACES / "astronaut_face.png"), "--task", "inpaint", "--mask", str(tmp_path / "mask.png"),
                  "--steps", "4,4,4,4", "--device", "cpu", "--out", str(tmp_path / "out.png"),
                  "--gif", str(tmp_path / "out.gif"), "--report", str(tmp_path / "report.json"),
                  "--save-state", str(tmp_path / "state.safetensors"), "--quiet")
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    for key in ("psnr", "mse", "lpips", "measurement_mse", "seconds", "steps", "method", "task", "hole_psnr",
                "hole_lpips"):
        assert key in report
    assert report["steps"] == 16 and report["method"] == "ilo" and report["task"] == "inpaint"
    assert 0 < report["mse"] < 1 and report["psnr"] > 5
    assert Image.open(tmp_path / "out.png").size == (64, 64)
    assert Image.open(tmp_path / "out.gif").n_frames > 1


def test_cli_accepts_an_already_degraded_observation(tmp_path):
    Image.open(FACES / "grace_hopper_face.png").resize((16, 16), Image.BICUBIC).save(tmp_path / "low.png")
    out = run_cli("--observation", str(tmp_path / "low.png"), "--task", "super-resolution", "--factor", "4",
                  "--method", "csgm-mse", "--steps", "5", "--out", str(tmp_path / "sr.png"),
                  "--report", str(tmp_path / "r.json"), "--quiet")
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["psnr"] is None and report["mse"] is None and report["measurement_mse"] >= 0


@pytest.mark.parametrize("args, message", [
    (["--image", "missing.png", "--task", "denoise"], "no such image file"),
    (["--image", str(FACES / "astronaut_face.png"), "--task", "super-resolution", "--factor", "3"], "does not divide"),
    (["--image", str(FACES / "astronaut_face.png"), "--task", "inpaint"], "needs a mask"),
    (["--image", str(FACES / "astronaut_face.png"), "--task", "denoise", "--generator", "nope.pt"], "not found"),
])
def test_bad_arguments_exit_non_zero_with_one_clear_line(tmp_path, args, message):
    out = run_cli(*args, "--out", str(tmp_path / "o.png"), "--quiet")
    assert out.returncode != 0
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_corrupt_image_is_a_clear_error(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG not really")
    out = run_cli("--image", str(tmp_path / "bad.png"), "--task", "denoise", "--out", str(tmp_path / "o.png"), "--quiet")
    assert out.returncode == 2 and "not a readable image" in out.stderr
    assert not (tmp_path / "o.png").exists()


def test_cli_aligns_the_photo_and_writes_the_repaired_photo_at_its_own_size(tmp_path):
    photo = Image.open(FACES / "grace_hopper_face.png").convert("RGB")
    canvas = Image.new("RGB", (420, 360), (120, 110, 100))
    canvas.paste(photo.rotate(12, expand=False), (100, 60))
    canvas.save(tmp_path / "photo.png")
    write_mask(tmp_path / "mask.png", (360, 420), slice(230, 270), slice(170, 290))  # the mouth
    out = run_cli("--image", str(tmp_path / "photo.png"), "--task", "inpaint", "--mask", str(tmp_path / "mask.png"),
                  "--align", "landmarks", "--steps", "3,3,3,3", "--out", str(tmp_path / "out.png"),
                  "--crop-out", str(tmp_path / "crop.png"), "--repaired", str(tmp_path / "repaired.png"),
                  "--report", str(tmp_path / "r.json"), "--quiet")
    assert out.returncode == 0, out.stderr
    repaired = np.asarray(Image.open(tmp_path / "repaired.png"))
    original = np.asarray(canvas)
    assert repaired.shape == original.shape
    far = np.ones((360, 420), bool)
    far[200:300, 140:320] = False  # the painted box grown by far more than the feather
    assert np.array_equal(repaired[far], original[far])
    assert (repaired[240:260, 200:260] != original[240:260, 200:260]).any()
    assert Image.open(tmp_path / "crop.png").size == (64, 64)
    assert json.loads((tmp_path / "r.json").read_text())["alignment"].startswith("landmarks")


def test_by_default_a_photo_is_cut_by_landmarks_and_a_crop_of_the_generators_size_is_kept(tmp_path):
    small = tmp_path / "small.png"
    Image.open(FACES / "grace_hopper_face.png").convert("RGB").resize((64, 64), Image.BICUBIC).save(small)
    for name, image in (("small", small), ("photo", FACES / "grace_hopper_face.png")):
        out = run_cli("--image", str(image), "--task", "denoise", "--steps", "1,1,1,1", "--out", str(tmp_path / "o.png"),
                      "--crop-out", str(tmp_path / f"{name}_crop.png"), "--report", str(tmp_path / f"{name}.json"),
                      "--quiet")
        assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "photo.json").read_text())["alignment"].startswith("landmarks")
    assert json.loads((tmp_path / "small.json").read_text())["alignment"].startswith("center")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "small_crop.png")), np.asarray(Image.open(small)))


def test_repaired_needs_the_photo(tmp_path):
    out = run_cli("--observation", str(FACES / "grace_hopper_face.png"), "--task", "denoise",
                  "--repaired", str(tmp_path / "r.png"), "--out", str(tmp_path / "o.png"), "--quiet")
    assert out.returncode == 2 and "need --image" in out.stderr


def test_cli_writes_where_it_is_guessing(tmp_path):
    write_mask(tmp_path / "mask.png", (256, 256), slice(140, 200), slice(60, 200))
    out = run_cli("--image", str(FACES / "astronaut_face.png"), "--task", "inpaint", "--mask", str(tmp_path / "mask.png"),
                  "--steps", "5,5,5,5", "--out", str(tmp_path / "o.png"), "--spread", str(tmp_path / "spread.png"),
                  "--report", str(tmp_path / "r.json"), "--quiet")
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["spread_in_hole"] > report["spread_outside"]
    assert Image.open(tmp_path / "spread.png").size == (256, 256)
