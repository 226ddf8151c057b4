"""Folder and clip jobs on the 2-worker local Ray cluster: a cell per batch of photos and per clip,
the same outputs and records as one process, the same resume rule."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from conftest import FACES, ROOT, local_env, write_video
from ilo_core.sequences.clips import probe_clip, read_frames


def photos_folder(tmp_path):
    """Two faces and a file that is no image."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut_face.png", "grace_hopper_face.png"):
        (folder / name).write_bytes((FACES / name).read_bytes())
    (folder / "broken.jpg").write_bytes(b"this is not a JPEG")
    return folder


def solve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ilo_core", "solve", *args, "--quiet"], cwd=ROOT, env=local_env(),
                          capture_output=True, text=True, timeout=600)


def test_a_folder_on_ray_gives_the_photos_and_records_of_one_process_and_a_rerun_skips_them(ray_head, tmp_path):
    folder = photos_folder(tmp_path)
    common = ["--image", str(folder), "--task", "super-resolution", "--steps", "3,3,3,3", "--batch", "1"]
    here = solve(*common, "--out", str(tmp_path / "here"))
    assert here.returncode == 0, here.stderr[-3000:]
    there = solve(*common, "--out", str(tmp_path / "there"), "--cluster", ray_head)
    assert there.returncode == 0, there.stderr[-3000:]
    assert "2 repaired, 0 skipped" in there.stdout and "1 failed of 3 photos" in there.stdout
    assert "broken.jpg: failed: broken.jpg is not a readable image" in there.stderr
    for name in ("astronaut_face", "grace_hopper_face"):
        a, b = (np.asarray(Image.open(tmp_path / side / f"{name}.png")) for side in ("here", "there"))
        assert a.shape == (256, 256, 3) and np.array_equal(a, b)
        ra, rb = (json.loads((tmp_path / side / f"{name}.json").read_text()) for side in ("here", "there"))
        timing = ("seconds", "batch")  # "batch" counts the solves of the photo's job here, of its cell there
        assert {k: v for k, v in ra.items() if k not in timing} == {k: v for k, v in rb.items() if k not in timing}
    cells = [json.loads(p.read_text()) for p in (tmp_path / "there" / ".ilo-cells").glob("*.json")]
    assert len(cells) == 3 and {c["run"]["back_end"] for c in cells} == {"ray"}  # a cell per batch of 1 (the broken
    # file is read, sent and refused by its cell: a failed photo in a finished cell)
    again = solve(*common, "--out", str(tmp_path / "there"), "--cluster", ray_head)
    assert "0 repaired, 2 skipped" in again.stdout  # the photos' own records, as in one process


def test_a_clip_on_ray_is_one_cell_and_comes_back_whole(ray_head, moving_grace, tmp_path):
    frames = [moving_grace.frame(t) for t in range(4)]
    video = write_video(tmp_path / "face.mp4", frames, fps=25)
    common = ["--image", str(video), "--task", "super-resolution", "--steps", "3,3,3,3", "--warm-steps", "1"]
    here = solve(*common, "--out", str(tmp_path / "here.mp4"))
    assert here.returncode == 0, here.stderr[-3000:]
    report = tmp_path / "report.json"
    there = solve(*common, "--out", str(tmp_path / "there.mp4"), "--cluster", ray_head, "--report", str(report),
                  "--gif", str(tmp_path / "key.gif"))
    assert there.returncode == 0, there.stderr[-3000:]
    info = probe_clip(tmp_path / "there.mp4")
    assert (info.frames, info.width, info.height, info.fps) == (4, 288, 240, 25.0)
    for a, b in zip(read_frames(probe_clip(tmp_path / "here.mp4")), read_frames(info)):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 1.0  # the same repair (through the codec)
    record = json.loads(report.read_text())
    assert record["written"] == [0, 3] and record["worker"]
    assert Image.open(tmp_path / "key.gif").n_frames > 2
    frames_out = solve(*common, "--out", str(tmp_path / "frames"), "--cluster", ray_head)
    assert frames_out.returncode != 0 and "into a video file" in frames_out.stderr
