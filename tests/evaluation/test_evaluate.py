"""`python -m ilo_core.evaluation.evaluate --quick` writes a well-formed results.json and report (issue 4)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image

from conftest import FACES
from ilo_core.evaluation import evaluate, grid_definition
from ilo_core.evaluation.grid_definition import applicable, grid, inpainting_mask

RECORD_KEYS = {"experiment", "image", "image_kind", "task", "level", "method", "seed", "steps", "seconds",
               "mse", "psnr", "lpips", "measurement_mse", "batch"}


def test_quick_evaluation_writes_results_json_report_plots_and_contact_sheet(tmp_path):
    out = tmp_path / "eval"
    assert evaluate.main(["--quick", "--out", str(out)]) == 0
    data = json.loads((out / "results.json").read_text())
    meta, records = data["meta"], data["records"]
    assert meta["quick"] and meta["steps_per_layer"] == 10 and meta["total_steps"] == 40
    images = [im["name"] for im in meta["images"]]
    assert {im["kind"] for im in meta["images"]} == {"face", "sample"}
    # one record per image x setting x applicable method x seed, plus the SNA ablation
    expected = sum(len(images) for s in grid(64, quick=True) for m in meta["methods"] if applicable(m, s.task))
    expected += len(images) * 4
    assert len(records) == expected
    assert any(r["method"] == "ilo-auto" and r["steps"] > 40 for r in records)  # it tried candidates somewhere
    for r in records:
        assert RECORD_KEYS <= set(r)
        assert all(math.isfinite(r[k]) for k in ("mse", "psnr", "lpips", "measurement_mse", "seconds"))
        assert 0 <= r["mse"] <= 1 and r["lpips"] >= 0
        if r["method"] == "ilo-auto":  # its work in batch steps: at most twice the budget (the budget
            assert 40 <= r["steps"] <= 80  # itself where too few measurements can be held out to choose)
        else:
            assert r["steps"] == (0 if r["method"] in ("bm3d", "telea", "navier-stokes") else 40)
        if r["task"] in ("inpaint", "random-inpaint"):
            assert math.isfinite(r["hole_psnr"]) and r["hole_lpips"] >= 0
    tasks = {r["task"] for r in records if r["experiment"] == "grid"}
    assert tasks == {"random-inpaint", "inpaint", "denoise", "super-resolution", "compressed-sensing"}
    assert {r["method"] for r in records if r["experiment"] == "sna-ablation"} == {
        "csgm-mse", "csgm-mse+sna", "ilo", "ilo+sna"}
    report = (out / "report.md").read_text()
    for needle in ("best CSGM / ILO", "Stochastic Noise Addition", "figure2.png", "contact_sheet.png", "40 steps",
                   "Inside the hole", "telea", "ilo-auto / ILO true MSE", "settings | |"):
        assert needle in report
    for png in ("figure2.png", "contact_sheet.png"):
        with Image.open(out / png) as im:
            assert im.size[0] > 300 and im.size[1] > 150
    assert not list(out.glob("*.tmp*"))


def test_evaluation_reproduces_a_record_from_its_seed(dcgan, tmp_path):
    images = grid_definition.evaluation_images(dcgan, None, samples=1, faces=0)
    setting = [s for s in grid(64, quick=True) if s.task == "compressed-sensing"][0]
    from ilo_core.perceptual.distance import PerceptualDistance

    lp = PerceptualDistance("alex", None)
    runs = [grid_definition.run_setting(dcgan, setting, images, ["csgm-mse"], 3, seed=5, lpips=lp)[0] for _ in range(2)]
    assert runs[0][0]["mse"] == runs[1][0]["mse"]
    other = grid_definition.run_setting(dcgan, setting, images, ["csgm-mse"], 3, seed=6, lpips=lp)[0]
    assert other[0]["measurement_mse"] != runs[0][0]["measurement_mse"]


def test_held_out_samples_differ_from_the_faces_and_from_each_other(dcgan):
    images = grid_definition.evaluation_images(dcgan, None, samples=2)
    assert [im.kind for im in images] == ["face", "face", "sample", "sample"]
    assert all(im.image.shape == (1, 3, 64, 64) and im.image.abs().max() <= 1 for im in images)
    assert not torch.equal(images[2].image, images[3].image)


def test_the_landmark_crop_frames_the_faces_as_the_generators_samples_are(dcgan):
    from ilo_core.photo.alignment import measure_face_frame
    from ilo_core.photo.images import tensor_to_uint8

    side = {}
    for how in ("box", "landmarks"):
        crops = [tensor_to_uint8(im.image) for im in grid_definition.evaluation_images(dcgan, FACES, 0, align_how=how)]
        frame, found = measure_face_frame(crops)
        assert found == len(crops) == 2
        side[how] = frame.side
    print(f"FFHQ's square / image side: box crop {side['box']:.3f}, landmark crop {side['landmarks']:.3f}, "
          f"the generator's samples {dcgan.face_frame.side}")
    assert abs(side["landmarks"] - dcgan.face_frame.side) < 0.06 < abs(side["box"] - dcgan.face_frame.side)
    with pytest.raises(ValueError, match="box or landmarks"):
        grid_definition.evaluation_images(dcgan, FACES, 0, align_how="ffhq")


def test_masks_cover_part_of_the_face():
    for shape in ("box", "strokes"):
        mask = inpainting_mask(shape, 64)
        assert mask.dtype == torch.bool and 0.05 < mask.float().mean() < 0.5


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert evaluate.main(["--images", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert "no images" in capsys.readouterr().err
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert evaluate.main(["--images", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "bad.png" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate.main(["--methods", "ilo,magic", "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit):
        evaluate.main(["--tasks", "deblur", "--samples", "0", "--out", str(tmp_path / "o")])


def test_inpainting_records_carry_the_figures_inside_the_hole(faces64):
    import torch

    from ilo_core.physics.problems import evaluate_batch, simulate

    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[20:40, 10:50] = True
    problem = simulate("inpaint", faces64[0], mask=mask)
    perfect_outside = torch.where(mask, torch.zeros_like(faces64[0]), faces64[0])
    r = evaluate_batch(perfect_outside, problem)[0]
    hole = (((torch.zeros_like(faces64[0]) - faces64[0]) / 2).square()[:, :, mask]).mean()
    assert abs(r["hole_psnr"] - float(-10 * torch.log10(hole))) < 1e-4
    assert r["pasted_psnr"] == pytest.approx(r["psnr"], abs=1e-4) and r["psnr"] > r["hole_psnr"]
    assert evaluate_batch(faces64[0], problem)[0]["hole_lpips"] < 1e-6


def test_classical_inpainting_baselines_fill_the_hole(faces64):
    import torch

    from ilo_core.evaluation.grid_definition import applicable, classical_inpaint
    from ilo_core.physics.problems import evaluate_batch, simulate

    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[20:40, 10:50] = True
    problem = simulate("inpaint", faces64[1], mask=mask)
    for method in ("telea", "navier-stokes"):
        filled = classical_inpaint(problem, method)
        r = evaluate_batch(filled, problem)[0]
        assert r["hole_psnr"] > 12  # a smooth fill, far better than the violet hole
        assert applicable(method, "inpaint") and not applicable(method, "denoise")
