"""The page's clips: a key frame to paint on, and a clip's repair as throttled updates.

    info, png = key_frame(clip_path, 0, folder)          # the frame shown in the mask canvas
    for update in run_clip(generator, info, request, painted, stop, folder):
        ...                                                # status, preview, then the clip and GIF

The repair is `ilo_core.sequences.clip_repair.ClipRepair`, the CLI's; Stop (the page's
`StopFlag`) ends it between two solver steps and the frames finished so far are written as a
shorter clip whose status says where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ilo_core.frontends.export import FrameRecorder
from ilo_core.frontends.page import whole_number
from ilo_core.generators.base import SplitGenerator
from ilo_core.photo.intake import InputError
from ilo_core.sequences.clip_repair import ClipRepair, ClipRequest
from ilo_core.sequences.clips import MAX_FRAMES, ClipInfo, probe_clip, read_frames


def key_frame(path: str | Path, index: int, folder: Path) -> tuple[ClipInfo, Path]:
    """The clip's metadata (its limits checked: `ClipError`) and frame `index` as a PNG in
    `folder`, for painting. Frames are decoded up to `index` only."""
    info = probe_clip(path)
    if not 0 <= index < max(info.frames, 1):
        raise InputError(f"The key frame {index} is not in the clip (frames 0 to {info.frames - 1}).")
    for t, frame in enumerate(read_frames(info)):
        if t == index:
            png = folder / f"key_frame_{index}.png"
            Image.fromarray(frame).save(png)
            return info, png
    raise InputError(f"The clip ends before frame {index}: its metadata promised {info.frames} frames.")


def frame_index(value: object) -> int:
    """The key-frame slider's value -> a frame index (`whole_number`: InputError in one sentence)."""
    return whole_number(value, "The key frame", MAX_FRAMES)


@dataclass
class ClipUpdate:
    status: str
    preview: np.ndarray | None = None    # R x R x 3 uint8: the last finished frame's answer
    clip: Path | None = None             # the repaired clip (MP4), once written
    gif: Path | None = None              # the key frame's progression, layer by layer


def run_clip(generator: SplitGenerator, info: ClipInfo, request: ClipRequest, painted: np.ndarray | None, stop,
             folder: Path, min_interval: float = 0.5) -> Iterator[ClipUpdate]:
    """The clip's repair as updates at most every `min_interval` s (and one per finished
    frame's preview), then the final one with the clip and the key frame's GIF in `folder`.
    `stop`: anything with `is_set()`."""
    work = folder / "frames_work"
    work.mkdir(exist_ok=True)
    job = ClipRepair(generator, info, request, painted, work)
    recorder = FrameRecorder()
    job.key_progress = recorder.add_progress
    last, events, stopped_at = 0.0, job.run(), None
    try:
        for progress in events:
            if stop.is_set():
                stopped_at = progress.frame if progress.frame is not None else progress.done
                break
            now = time.monotonic()
            if progress.preview is not None or now - last >= min_interval:
                last = now
                yield ClipUpdate(progress.describe(), progress.preview)
    finally:
        events.close()
    if job.span() is None:
        yield ClipUpdate("Stopped before the key frame was repaired: there is no clip to show." if stopped_at is not None
                         else "No frame could be repaired.")
        return
    yield ClipUpdate("Writing the clip…")
    out = folder / "repaired_clip.mp4"
    first, last_frame, audio = job.write(out)
    gif = recorder.save_gif(folder / "key_frame_progression.gif") if recorder.frames else None
    count = last_frame - first + 1
    if stopped_at is not None or count < job.frames:
        status = (f"**Stopped** at frame {stopped_at}: the clip has frames {first} to {last_frame} of {job.frames} "
                  f"({count} frames); {audio}.")
    else:
        status = f"Repaired all {job.frames} frames in {sum(job.solved.values()):.0f} s; {audio}."
    if job.log:
        status += "\n\n" + "\n".join(f"- {line}" for line in job.log[:8])
    yield ClipUpdate(status, None, out, gif)
