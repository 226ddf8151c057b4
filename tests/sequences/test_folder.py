"""A folder of photos as one job (`python -m ilo_core solve --image DIR --out DIR`): batches,
a bad photo in one line, resume, --force, the report."""

from __future__ import annotations

import json
import shutil

import numpy as np
from PIL import Image

from conftest import FACES, run_cli
from ilo_core.photo.intake import PhotoTask
from ilo_core.sequences.folder_repair import FolderRepair, FolderSettings, list_photos, match_masks


def photos_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut_face.png", "grace_hopper_face.png"):
        shutil.copy(FACES / name, folder / name)
    (folder / "broken.jpg").write_bytes(b"this is not a JPEG")
    return folder


def test_a_folder_with_a_bad_photo_goes_on_and_a_rerun_skips_what_is_done(tmp_path):
    folder, out, report = photos_folder(tmp_path), tmp_path / "out", tmp_path / "report.json"
    args = ["--image", str(folder), "--task", "super-resolution", "--steps", "4,4,4,4", "--out", str(out),
            "--report", str(report), "--quiet"]
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ("broken.jpg: failed: broken.jpg is not a readable image (UnidentifiedImageError): "
                                   "use a PNG, JPEG or WebP file.")
    assert "2 repaired, 0 skipped" in done.stdout and "1 failed of 3 photos" in done.stdout
    for name in ("astronaut_face", "grace_hopper_face"):
        assert Image.open(out / f"{name}.png").size == (256, 256)  # the photo's own size
    data = json.loads(report.read_text())
    statuses = {r["photo"]: r["status"] for r in data["records"]}
    assert statuses == {"astronaut_face.png": "repaired", "broken.jpg": "failed", "grace_hopper_face.png": "repaired"}
    assert {r["batch"] for r in data["records"] if r["status"] == "repaired"} == {0}  # one operator: one batch
    assert data["summary"]["repaired"] == 2 and data["summary"]["mean_psnr"] > 15
    before = (out / "astronaut_face.png").stat().st_mtime_ns
    again = run_cli(*args)
    assert "0 repaired, 2 skipped" in again.stdout
    assert (out / "astronaut_face.png").stat().st_mtime_ns == before
    forced = run_cli(*args, "--force")
    assert "2 repaired, 0 skipped" in forced.stdout
    changed = run_cli(*args[:-1], "--seed", "3", "--quiet")  # other settings: repaired again
    assert "2 repaired, 0 skipped" in changed.stdout


def test_painted_holes_are_matched_by_name_and_solved_one_by_one(dcgan, tmp_path):
    folder = photos_folder(tmp_path)
    masks = tmp_path / "masks"
    masks.mkdir()
    mask = np.zeros((256, 256), np.uint8)
    mask[100:140, 70:190] = 255
    Image.fromarray(mask).save(masks / "astronaut_face.png")
    mask[100:140, 40:120] = 255
    Image.fromarray(mask).save(masks / "grace_hopper_face.png")
    photos = list_photos(folder)
    job = FolderRepair(dcgan, photos, tmp_path / "out", FolderSettings(PhotoTask("inpaint"), steps=(3, 3, 3, 3)),
                       match_masks(photos, masks))
    (tmp_path / "out").mkdir()
    records = {r["photo"]: r for r in job.run()}
    assert records["broken.jpg"]["status"] == "failed"
    assert records["astronaut_face.png"]["batch"] != records["grace_hopper_face.png"]["batch"]
    repaired = np.asarray(Image.open(tmp_path / "out" / "astronaut_face.png").convert("RGB")).astype(int)
    original = np.asarray(Image.open(FACES / "astronaut_face.png").convert("RGB")).astype(int)
    assert np.abs(repaired - original)[100:140, 70:190].mean() > 5
    assert np.abs(repaired - original)[:80].max() == 0  # outside the painted band: the photo itself
    unmatched = match_masks(photos, masks)
    assert unmatched[folder / "broken.jpg"] is None
    (tmp_path / "out" / "grace_hopper_face.json").unlink()  # its PNG is now a file this job did not make
    again = FolderRepair(dcgan, photos, tmp_path / "out", FolderSettings(PhotoTask("inpaint"), steps=(3, 3, 3, 3)),
                         match_masks(photos, masks), force=True)
    records = {r["photo"]: r for r in again.run()}
    assert records["grace_hopper_face.png"]["status"] == "failed"
    assert "was not overwritten" in records["grace_hopper_face.png"]["reason"]
