"""A clip end to end through the CLI, and warm-started frames against frames solved on their own."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli, write_video
from ilo_core.engine.warm import WarmStart
from ilo_core.photo.intake import PhotoTask
from ilo_core.sequences.clip_repair import ClipRepair, ClipRequest
from ilo_core.sequences.clips import probe_clip, read_frames
from ilo_core.sequences.flicker import flicker


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory, moving_grace):
    folder = tmp_path_factory.mktemp("clip")
    frames = [moving_grace.frame(t) for t in range(moving_grace.frames)]
    video = write_video(folder / "face.mp4", frames, fps=25)
    Image.fromarray(moving_grace.hole(2).astype(np.uint8) * 255).save(folder / "mask_at_2.png")
    return video, folder / "mask_at_2.png"


def centre(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    return np.array([cols.mean(), rows.mean()])


def test_a_clip_is_repaired_where_the_face_is_painted_and_nowhere_else(clip_files, moving_grace, tmp_path):
    video, mask = clip_files
    # lossless frames out: an H.264 encode of the same frames differs from process to process once the
    # accelerated models have run (up to 20 levels a pixel), which is no measure of the repair
    out, report, gif = tmp_path / "repaired_frames", tmp_path / "report.json", tmp_path / "key.gif"
    done = run_cli("--image", str(video), "--task", "inpaint", "--mask", str(mask), "--key-frame", "2",
                   "--steps", "8,8,8,8", "--warm-steps", "4", "--out", str(out), "--report", str(report),
                   "--gif", str(gif), "--quiet")
    assert done.returncode == 0, done.stderr
    info = probe_clip(out)
    assert (info.frames, info.fps, info.width, info.height) == (8, 25.0, 288, 240)
    record = json.loads(report.read_text())
    assert record["written"] == [0, 7] and sorted(map(int, record["frame_seconds"])) == list(range(8))
    assert Image.open(gif).n_frames > 2  # the key frame's progression
    source = list(read_frames(probe_clip(video)))
    for t, repaired in enumerate(read_frames(info)):
        change = np.abs(repaired.astype(float) - source[t].astype(float)).mean(axis=2)
        hole = moving_grace.hole(t)
        grown = np.zeros_like(hole)
        rows, cols = np.nonzero(hole)
        grown[rows.min() - 12:rows.max() + 13, cols.min() - 12:cols.max() + 13] = True
        assert change[hole].mean() > 6        # the painted band is repaired (generated anew)
        assert change[~grown].max() == 0      # the rest of the frame is the input frame itself
        # the repaired region follows the face: where frame t's band is, not where the key frame's was
        changed = change > 12
        assert np.linalg.norm(centre(changed & grown) - centre(hole)) < 4
    moved = np.linalg.norm(centre(moving_grace.hole(7)) - centre(moving_grace.hole(2)))
    assert moved > 15


def test_frames_out_as_pngs_and_bad_clips_in_one_line(clip_files, tmp_path):
    video, mask = clip_files
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(video.read_bytes()[:2000])
    done = run_cli("--image", str(broken), "--task", "inpaint", "--mask", str(mask), "--out", str(tmp_path / "o.mp4"))
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: The file broken.mp4 is not a video that can be read (corrupt, truncated "
                                   "or not a video: InvalidDataError).")
    done = run_cli("--image", str(video), "--task", "super-resolution", "--steps", "4,4,4,4", "--warm-steps", "2",
                   "--out", str(tmp_path / "frames"), "--quiet")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [f"frame_{k:06d}.png" for k in range(8)]
    assert "PNG frames carry no audio" not in done.stdout and "no audio" in done.stdout
    done = run_cli("--image", str(video), "--task", "inpaint", "--mask", str(mask), "--key-frame", "9",
                   "--out", str(tmp_path / "k.mp4"))
    assert done.returncode == 2 and "key frame 9 is not in the clip" in done.stderr
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    done = run_cli("--image", str(video), "--task", "denoise", "--out", str(tmp_path / "mine"))
    assert done.returncode == 2 and "holds other files (notes.txt" in done.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_warm_started_frames_flicker_less_than_frames_solved_on_their_own(dcgan, moving_grace, tmp_path):
    clip_dir = tmp_path / "frames"
    moving_grace.write(clip_dir)
    clip = probe_clip(clip_dir)
    true = [moving_grace.frame(t) for t in range(clip.frames)]
    holes = [moving_grace.hole(t) for t in range(clip.frames)]
    motions = [None] + [moving_grace.motion(t) for t in range(1, clip.frames)]
    scores = {}
    for name, warm in (("independent", None), ("warm", WarmStart())):
        work = tmp_path / name
        work.mkdir()
        job = ClipRepair(dcgan, clip, ClipRequest(PhotoTask("inpaint"), steps=(20, 20, 20, 20), warm=warm),
                         holes[0], work)
        for _ in job.run():
            pass
        frames = []
        job.write(tmp_path / f"{name}.mp4", frame_hook=lambda t, frame: frames.append(frame))
        scores[name] = flicker(frames, true, motions, holes)
    assert scores["warm"] < scores["independent"], scores
