"""Export of a solve's progression: labelled frames -> animated GIF (written atomically).

The GIF is encoded by Pillow with one palette for all frames, made by median cut from a
thinned sample of them (every 4th pixel of up to 16 frames): several times faster than
imageio's per-frame quantization, which was most of the time between Stop and the result on
the page (docs/benchmark.md).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from torch import Tensor

from ilo_core.atomic import write_bytes
from ilo_core.photo.images import tensor_to_uint8


def label_frame(image: Tensor, text: str, size: int = 256) -> np.ndarray:
    """[1, 3, H, W] (or [3, H, W]) in [-1, 1] -> size x (size + 18) x 3 uint8 with a caption bar."""
    pil = Image.fromarray(tensor_to_uint8(image)).resize((size, size), Image.NEAREST)
    canvas = Image.new("RGB", (size, size + 18), (20, 20, 20))
    canvas.paste(pil, (0, 0))
    ImageDraw.Draw(canvas).text((4, size + 3), text, fill=(235, 235, 235))
    return np.asarray(canvas)


@dataclass
class FrameRecorder:
    """Collects labelled frames from progress events (one item of the batch)."""

    size: int = 256
    max_frames: int = 200
    frames: list[np.ndarray] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)  # each frame's round

    def add(self, image: Tensor, round_index: int, split: int, step: int, item: int = 0) -> None:
        if len(self.frames) >= self.max_frames:
            self.frames, self.rounds = self.frames[::2], self.rounds[::2]  # keep the whole progression, thinner
        self.frames.append(label_frame(image[item], f"round {round_index}  layer {split}  step {step}", self.size))
        self.rounds.append(round_index)

    def before(self, round_index: int) -> "FrameRecorder":
        """A new recorder holding this one's frames of the rounds before `round_index` (a re-run
        from that round continues the progression)."""
        keep = [i for i, r in enumerate(self.rounds) if r < round_index]
        return FrameRecorder(self.size, self.max_frames, [self.frames[i] for i in keep], [self.rounds[i] for i in keep])

    def add_progress(self, event, item: int = 0, view: Callable[[Tensor], Tensor] | None = None) -> None:
        """The event's image, if it has one; `view` maps it first ([B, 3, R, R] -> [B, 3, H, W])."""
        if event.image is not None:
            image = event.image if view is None else view(event.image)
            self.add(image, event.round_index, event.split, event.step, item)

    def save_gif(self, path: str | Path, final: Tensor | None = None, seconds_per_frame: float = 0.12) -> Path:
        """Write the GIF whole or not at all; `final` ([1, 3, H, W]) is held at the end."""
        frames = list(self.frames)
        if final is not None:
            frames += [label_frame(final, "best result", self.size)] * 8
        if not frames:
            raise ValueError("no frames were recorded")
        path = Path(path)
        write_bytes(encode_gif(frames, seconds_per_frame), path)
        return path


def encode_gif(frames: list[np.ndarray], seconds_per_frame: float) -> bytes:
    """H x W x 3 uint8 frames -> the bytes of a looping GIF with one shared palette."""
    step = max(1, len(frames) // 16)
    sample = np.concatenate([f[::4, ::4] for f in frames[::step]], axis=0)
    palette = Image.fromarray(sample).quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    indexed = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    buffer = io.BytesIO()
    indexed[0].save(buffer, format="GIF", save_all=True, append_images=indexed[1:],
                    duration=int(seconds_per_frame * 1000), loop=0, optimize=False)
    return buffer.getvalue()
