"""A clip repaired as one job: the face followed, the key frame solved in full, every other
frame warm-started from its neighbour (`ilo_core.engine.warm`), the answers pasted back.

    job = ClipRepair(generator, probe_clip("clip.mp4"), ClipRequest(PhotoTask("inpaint")), painted, work)
    for progress in job.run():      # close it to stop: the frames solved so far are kept
        print(progress.describe())
    first, last, note = job.write("repaired.mp4")

Three passes over the frames, each streamed (memory does not grow with the clip's length):
1. the face is found in every frame, and its landmarks smoothed (`ilo_core.sequences.tracking`);
2. every frame is posed as a photo is (`take_aligned` + `TakenPhoto.pose`, the key frame's
   painted mask carried onto it by its own square); the key frame and the frames after it are
   solved in order as they come, the frames before it are set aside (on disk) and solved
   afterwards, backwards from the key frame;
3. the answers are pasted back into the frames and written (`ClipWriter`).
Answers and set-aside observations live in `work` (a folder the caller owns), one file a frame.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ilo_core.engine.config import SolverConfig
from ilo_core.engine.methods import Solve
from ilo_core.engine.presets import default_config
from ilo_core.engine.warm import WarmStart, carry_over, chain_round, warm_config
from ilo_core.generators.base import SplitGenerator
from ilo_core.photo.alignment import aligned_mask
from ilo_core.photo.images import tensor_to_uint8
from ilo_core.photo.intake import InputError, PhotoTask, paste_answer, take_aligned
from ilo_core.physics.operators import Inpainting
from ilo_core.physics.problems import Problem, build_operator
from ilo_core.sequences.clips import ClipInfo, ClipWriter, read_frames
from ilo_core.sequences.tracking import FaceFollower, Track, carry_mask, fixed_track

CLIP_ALIGNMENTS = ("landmarks", "center")


@dataclass(frozen=True)
class ClipRequest:
    """What to do with a clip. `warm` None: every frame solved on its own with the key frame's
    settings (the baseline the warm start is measured against); `config` replaces the default
    config of `task` and `method` (`steps` and `seed` then unused). `task.seed` + the frame's index
    seeds the frame's simulated degradation (noise differs from frame to frame, as a camera's)."""

    task: PhotoTask
    method: str = "ilo"
    key_frame: int = 0
    align: str = "landmarks"
    face: int = 0
    steps: tuple[int, ...] | None = None
    warm: WarmStart | None = field(default_factory=WarmStart)
    seed: int = 0
    config: SolverConfig | None = None   # the key frame's config (the page's sliders); None: the default


@dataclass
class ClipProgress:
    """Where a clip's repair is: `stage` "finding the face" or "repairing"; `done` of `total`
    frames; the frame being solved; seconds left (None until known); the last answer
    (R x R x 3 uint8) when a frame has just finished; a line for the log."""

    stage: str
    done: int
    total: int
    frame: int | None = None
    seconds_left: float | None = None
    preview: np.ndarray | None = None
    message: str | None = None

    def describe(self) -> str:
        if self.stage != "repairing":
            return f"{self.stage}: frame {self.done} of {self.total}"
        left = "" if self.seconds_left is None else f", about {self.seconds_left:.0f} s left"
        return f"frame {min(self.done + 1, self.total)} of {self.total}{left}"


class ClipRepair:
    """The repair of one clip (see the module notes). `painted`: the key frame's painted
    region, [H, W] bool at the clip's frame size (inpainting only)."""

    def __init__(self, generator: SplitGenerator, clip: ClipInfo, request: ClipRequest,
                 painted: np.ndarray | None, work: str | Path) -> None:
        self.generator, self.clip, self.request = generator, clip, request
        self.work = Path(work)
        self.size = generator.resolution
        task = request.task.task
        if request.align not in CLIP_ALIGNMENTS:
            raise InputError(f"A clip is aligned by {' or '.join(CLIP_ALIGNMENTS)}, not {request.align}.")
        if task == "inpaint":
            if painted is None or not painted.any():
                raise InputError("The mask is empty: paint the region to repair on the key frame.")
            if painted.shape != (clip.height, clip.width):
                raise InputError(f"The mask is {painted.shape[1]} × {painted.shape[0]} px but the clip's frames are "
                                 f"{clip.width} × {clip.height} px: paint on the key frame as shown.")
        self.painted = painted if task == "inpaint" else None
        if not 0 <= request.key_frame < max(clip.frames, 1):
            raise InputError(f"The key frame {request.key_frame} is not in the clip (frames 0 to {clip.frames - 1}).")
        self.config = request.config or default_config(generator, task, request.method,
                                                       observed=request.task.observed, seed=request.seed,
                                                       steps=list(request.steps) if request.steps else None)
        self.warm = None
        if request.warm is not None:
            if self.config.method == "ilo-auto" or self.config.estimate.best_of > 1:
                raise InputError("A clip is warm-started with ILO or a CSGM baseline, one run each: not ilo-auto "
                                 "or the best of several runs.")
            self.warm = warm_config(self.config, request.warm)
        self.track: Track | None = None
        self.frames = 0
        self.solved: dict[int, float] = {}   # frame -> seconds its solve took
        self.failed: dict[int, str] = {}     # frame -> why it was left as it is
        self.log: list[str] = []
        self.key_progress = None  # called with each of the key frame's solver events (its progression GIF)

    # --- the passes --------------------------------------------------------------------
    def run(self) -> Iterator[ClipProgress]:
        """Passes 1 and 2 (see the module notes) as progress events; close it to stop."""
        yield from self._follow()
        key = self.request.key_frame
        if key >= self.frames:
            raise InputError(f"The key frame {key} is not in the clip (it has {self.frames} frames).")
        aligned = None
        if self.painted is not None:
            aligned = aligned_mask(self.painted, self.track.alignments[key], self.size)
        self._aligned = aligned
        chain = key_chain = self._previous = self._key_answer = None
        for t, frame in enumerate(read_frames(self.clip)):
            if t < key:
                self._set_aside(t, self._pose(t, frame))
                continue
            problem = self._pose(t, frame)
            chain = yield from self._solve(t, problem, chain)
            if t == key:
                key_chain = chain
        chain, self._previous = key_chain, self._key_answer
        for t in range(key - 1, -1, -1):
            chain = yield from self._solve(t, self._take_aside(t), chain)

    def _follow(self) -> Iterator[ClipProgress]:
        follower = FaceFollower()
        first = None
        for t, frame in enumerate(read_frames(self.clip)):
            if self.request.align == "landmarks":
                follower.add(frame)
            elif t == self.request.key_frame:
                first = frame
            self.frames = t + 1
            if t % 5 == 0:
                yield ClipProgress("finding the face", t + 1, max(self.clip.frames, t + 1))
        if self.request.align == "landmarks":
            try:
                self.track = follower.track(self.request.key_frame, self.generator.face_frame, self.painted,
                                            self.request.face)
            except ValueError as err:
                text = str(err)
                raise InputError(text[:1].upper() + text[1:] + ".") from None
            if self.track.missing:
                self.log.append(self.track.describe_missing())
        else:
            self.track = fixed_track(first, self.frames, "center", self.generator.face_frame)
        yield ClipProgress("finding the face", self.frames, self.frames, message=self.log[-1] if self.log else None)

    def _painted_at(self, t: int) -> np.ndarray | None:
        if self.painted is None:
            return None
        if t == self.request.key_frame:
            return self.painted
        return carry_mask(self._aligned, self.track.alignments[t])

    def _pose(self, t: int, frame: np.ndarray) -> Problem | None:
        taken = take_aligned(frame, self.track.alignments[t], self.size, self._painted_at(t))
        try:
            return taken.pose(replace(self.request.task, seed=self.request.task.seed + t), self.generator.device)
        except InputError as err:
            if t == self.request.key_frame:
                raise
            self.failed[t] = str(err)
            return None

    def _solve(self, t: int, problem: Problem | None, chain: dict | None) -> Iterator[ClipProgress]:
        """Solve frame t (warm from `chain` when there is one); returns the next frame's chain."""
        if problem is None:
            self.log.append(f"frame {t} left as it is: {self.failed[t]}")
            return chain
        warm = self.warm is not None and chain is not None
        job = Solve(self.generator, problem.operator, problem.observation, self.warm if warm else self.config,
                    start=chain if warm else None)
        started = time.perf_counter()
        events = job.run()
        try:
            for event in events:
                if t == self.request.key_frame and self.key_progress is not None:
                    self.key_progress(event)
                if event.message:
                    self.log.append(f"frame {t}: {event.message}")
                if event.step % 5 == 0:
                    yield ClipProgress("repairing", len(self.solved), self.frames, t, self._seconds_left())
        finally:
            events.close()
        best = job.best[0]
        if best is None:
            self.failed[t] = "the solve reached no finite result"
            self.log.append(f"frame {t} left as it is: {self.failed[t]}")
            return None
        image = job.images()[:1].cpu()
        if warm:
            image = carry_over(image, self._previous, self.request.warm.carry)
        self._previous = image
        if t == self.request.key_frame:
            self._key_answer = image
        answer = tensor_to_uint8(image)
        np.save(self.work / f"answer_{t:06d}.npy", answer)
        self.solved[t] = time.perf_counter() - started
        yield ClipProgress("repairing", len(self.solved), self.frames, t, self._seconds_left(), preview=answer)
        if self.warm is None:
            return None
        return job.final_variables(chain_round(job.config, self.request.warm))

    def _seconds_left(self) -> float | None:
        """Frames left times the seconds of a frame like them (warm frames: measured once one
        has run, else the key frame's scaled by their share of its steps)."""
        left = self.frames - len(self.solved)
        if not self.solved:
            return None
        key = self.solved.get(self.request.key_frame)
        others = [s for t, s in self.solved.items() if t != self.request.key_frame]
        if others:
            per_frame = float(np.mean(others[-10:]))
        elif self.warm is not None and key is not None:
            per_frame = key * self.warm.total_steps / self.config.total_steps
        else:
            per_frame = key or 0.0
        return left * per_frame

    def _set_aside(self, t: int, problem: Problem | None) -> None:
        if problem is None:
            return
        tensors = {"observation": problem.observation.detach().cpu().contiguous()}
        if isinstance(problem.operator, Inpainting):
            tensors["keep"] = problem.operator.keep.detach().cpu().to(torch.uint8).contiguous()
        save_file(tensors, str(self.work / f"aside_{t:06d}.safetensors"))

    def _take_aside(self, t: int) -> Problem | None:
        path = self.work / f"aside_{t:06d}.safetensors"
        if not path.exists():
            return None
        tensors = load_file(str(path))
        device = self.generator.device
        task = self.request.task
        if "keep" in tensors:
            operator = Inpainting(tensors["keep"].bool())
        else:
            operator = build_operator(task.task, self.size, seed=task.seed + t, **task.params())
        path.unlink()
        return Problem(task.task, operator.to(device), tensors["observation"].to(device), None)

    # --- the answer ----------------------------------------------------------------------
    def span(self) -> tuple[int, int] | None:
        """The frames (first, last) around the key frame that were all solved (or left as they
        are); None when the key frame was not solved."""
        key = self.request.key_frame
        done = set(self.solved) | set(self.failed)
        if key not in self.solved:
            return None
        first = last = key
        while first - 1 in done:
            first -= 1
        while last + 1 in done:
            last += 1
        return first, last

    def answer(self, t: int) -> np.ndarray | None:
        """Frame t's answer in the generator's square, R x R x 3 uint8 (None if unsolved)."""
        path = self.work / f"answer_{t:06d}.npy"
        return np.load(path, allow_pickle=False) if path.exists() else None

    def write(self, out: str | Path, frame_hook=None) -> tuple[int, int, str]:
        """Pass 3: the frames of `span()` with their answers pasted back, written to `out` (a
        video file or a folder of PNG frames, `ClipWriter`), whole or not at all. Returns (first,
        last, what became of the audio). `frame_hook(t, repaired)` sees each written frame."""
        span = self.span()
        if span is None:
            raise InputError("No frame was repaired: there is no clip to write.")
        first, last = span
        task = self.request.task.task
        audio = self.clip if first == 0 else None  # the sound lines up only from the input's start
        with ClipWriter(out, self.clip.fps, (self.clip.width, self.clip.height), audio) as writer:
            for t, frame in enumerate(read_frames(self.clip)):
                if t < first:
                    continue
                if t > last:
                    break
                answer = self.answer(t)
                repaired = frame if answer is None else \
                    paste_answer(frame, answer, self.track.alignments[t], self._painted_at(t), task)
                writer.write(repaired)
                if frame_hook is not None:
                    frame_hook(t, repaired)
        note = writer.audio_note if audio is not None else "no audio: the clip does not start at the input's start"
        return first, last, note
