"""Test clips whose truth is known: a still face moved smoothly inside a larger frame.

    face = moving_face(photo, frame_def, frames=48)
    face.frame(t)      # H x W x 3 uint8, the true frame t
    face.hole(t)       # [H, W] bool, the painted region, fixed on the face, in frame t
    face.motion(t)     # 2 x 3: frame t - 1's pixels -> frame t's

The face is cut from the photo around its landmarks (a square `SOURCE_SIDE` px, the face's
FFHQ square about half of it), then frame t is that square moved by a similarity (translation
along a smooth loop, a small rotation and scale) with a slow brightness ramp, its edges
replicated to fill the frame. The hole is a band over the eyes and nose in the generator's
square of the still face (fractions `HOLE` of it), moved with the face.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ilo_core.generators.base import FaceFrame
from ilo_core.photo.alignment import Alignment, align, aligned_crop
from ilo_core.sequences.clips import ClipWriter

SOURCE_SIDE = 200
HOLE = (0.28, 0.36, 0.72, 0.62)   # left, top, right, bottom: fractions of the generator's square
FRAME_SIZE = (288, 240)           # width, height


@dataclass
class MovingFace:
    source: np.ndarray            # SOURCE_SIDE x SOURCE_SIDE x 3 uint8
    source_hole: np.ndarray       # [S, S] bool
    frames: int
    size: tuple[int, int] = FRAME_SIZE
    shift: tuple[float, float] = (30.0, 14.0)   # px: the loop's half-widths
    turn: float = 5.0                           # degrees
    zoom: float = 0.08                          # scale change, share
    dim: float = 0.15                           # brightness lost over the clip, share
    loop: float = 1.0                           # the share of the motion's loop the clip goes through

    def placement(self, t: int) -> np.ndarray:
        """2 x 3: the source square's pixels -> frame t's."""
        u = self.loop * t / max(self.frames - 1, 1)
        angle = self.turn * math.sin(2 * math.pi * u)
        scale = 1.0 + self.zoom * math.sin(math.pi * u)
        centre = (self.size[0] / 2 + self.shift[0] * math.sin(2 * math.pi * u),
                  self.size[1] / 2 + self.shift[1] * math.sin(math.pi * u))
        matrix = cv2.getRotationMatrix2D((SOURCE_SIDE / 2, SOURCE_SIDE / 2), angle, scale)
        matrix[:, 2] += np.array(centre) - SOURCE_SIDE / 2
        return matrix

    def frame(self, t: int) -> np.ndarray:
        moved = cv2.warpAffine(self.source, self.placement(t), self.size, flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)
        light = 1.0 - self.dim * t / max(self.frames - 1, 1)
        return np.clip(moved.astype(np.float32) * light, 0, 255).astype(np.uint8)

    def hole(self, t: int) -> np.ndarray:
        moved = cv2.warpAffine(self.source_hole.astype(np.float32), self.placement(t), self.size,
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return moved > 0.5

    def motion(self, t: int) -> np.ndarray:
        """2 x 3: frame t - 1's pixels -> frame t's."""
        def full(m: np.ndarray) -> np.ndarray:
            return np.vstack([m, [0, 0, 1]])
        return (full(self.placement(t)) @ np.linalg.inv(full(self.placement(t - 1))))[:2]

    def write(self, path: str | Path, fps: float = 25.0) -> None:
        """The true frames as a clip (a video file or a folder of PNG frames)."""
        with ClipWriter(path, fps, self.size) as writer:
            for t in range(self.frames):
                writer.write(self.frame(t))


def moving_face(photo: np.ndarray, frame_def: FaceFrame, frames: int = 48, **motion) -> MovingFace:
    """A `MovingFace` of the face in `photo` (H x W x 3 uint8; its largest face), framed for a
    generator whose faces sit as `frame_def` says (the hole is placed in that square)."""
    square = align(photo, "landmarks", frame_def)
    side = square.side
    # the source: the generator's square grown 1.6 x, at SOURCE_SIDE px
    centre = square.quad.mean(0)
    across, down = (square.quad[3] - square.quad[0]) / side, (square.quad[1] - square.quad[0]) / side
    grow = 1.6 * side / 2
    quad = np.stack([centre - (across + down) * grow, centre + (down - across) * grow,
                     centre + (across + down) * grow, centre + (across - down) * grow])

    source = np.asarray(aligned_crop(photo, Alignment(quad, square.method, square.photo_size), SOURCE_SIDE))
    inner = SOURCE_SIDE / 1.6
    offset = (SOURCE_SIDE - inner) / 2
    left, top, right, bottom = HOLE
    hole = np.zeros((SOURCE_SIDE, SOURCE_SIDE), dtype=bool)
    hole[int(offset + top * inner):int(offset + bottom * inner), int(offset + left * inner):int(offset + right * inner)] = True
    return MovingFace(source, hole, frames, **motion)
