"""One face followed through a clip: its landmarks per frame, smoothed over time, and the
aligned square of every frame; the key frame's painted mask carried onto every other frame.

The key frame's faces are found as a photo's are (`all_landmarks`; the face under the paint,
else the `face`-th largest). Other frames are searched at the scale that face needs (dlib's
detector finds faces of 80 px and more without upsampling: `TRACK_FACE_PX`), the first frame with a
face too, and the face nearest
the one followed in the frame before is taken. A frame where none is found takes its
neighbours' landmarks, interpolated (extrapolated as the nearest at the clip's ends). The
landmarks are then smoothed by a local quadratic fit over `SMOOTH_RADIUS` frames each side
(`smooth`), so that the aligned square does not jitter with the detector's pixel noise and
does not lag the head's motion either.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ilo_core.generators.base import FaceFrame
from ilo_core.photo.alignment import (Alignment, align, all_landmarks, choose_face, framed_quad, landmarks_at_scale,
                                      quad_from_landmarks)

TRACK_FACE_PX = 160     # px: a followed face is searched on frames scaled so that its FFHQ square is about this side
SMOOTH_RADIUS = 4       # frames each side of the local quadratic fit over each landmark coordinate


@dataclass
class Track:
    """The followed face: per frame its smoothed landmarks [N, 5, 2] and aligned square."""

    alignments: list[Alignment]
    missing: list[int]           # frames where no face was found (their landmarks interpolated)

    def describe_missing(self, limit: int = 12) -> str:
        if not self.missing:
            return ""
        shown = ", ".join(str(k) for k in self.missing[:limit]) + (" ..." if len(self.missing) > limit else "")
        return f"no face found in {len(self.missing)} frame(s) ({shown}): their square interpolated from their neighbours"


class FaceFollower:
    """Feed frames in order (`add`); `track(key, frame, ...)` then gives the `Track`."""

    def __init__(self) -> None:
        self.faces: list[list[np.ndarray]] = []   # per frame: every face's landmarks found there
        self._scale = 1.0
        self._upsample = 1
        self._last: np.ndarray | None = None
        self.size = (0, 0)  # (width, height) of the frames

    def add(self, frame: np.ndarray) -> None:
        """Look for faces in the next frame (H x W x 3 uint8)."""
        self.size = (frame.shape[1], frame.shape[0])
        if self._last is None:
            faces = all_landmarks(frame)
            if faces:  # every frame is searched at one scale, this one too: the landmarks' bias is the same
                side = np.linalg.norm(quad_from_landmarks(faces[0])[3] - quad_from_landmarks(faces[0])[0])
                self._scale, self._upsample = min(1.0, TRACK_FACE_PX / max(side, 1.0)), 0
                faces = landmarks_at_scale(frame, self._scale, self._upsample) or faces
        else:
            faces = landmarks_at_scale(frame, self._scale, self._upsample)
            if not faces and self._scale < 1.0:
                faces = all_landmarks(frame)
        if faces:
            self._last = faces[0]
        self.faces.append(faces)

    def track(self, key: int, frame_def: FaceFrame, painted: np.ndarray | None = None, face: int = 0) -> Track:
        """The face to follow: at frame `key`, the one under `painted` ([H, W] bool), else the
        `face`-th largest; from there, frame by frame in both directions, the nearest. ValueError
        when no frame has a face."""
        count = len(self.faces)
        if not any(self.faces):
            raise ValueError("no face was found in any frame of the clip: ILO Studio repairs faces")
        chosen: list[np.ndarray | None] = [None] * count
        start = key if self.faces[key] else min((k for k in range(count) if self.faces[k]), key=lambda k: abs(k - key))
        chosen[start] = choose_face(self.faces[start], frame_def, painted, face)
        for order in (range(start + 1, count), range(start - 1, -1, -1)):
            before = chosen[start]
            for k in order:
                if self.faces[k]:
                    centre = before.mean(0)
                    nearest = min(self.faces[k], key=lambda f: float(np.linalg.norm(f.mean(0) - centre)))
                    size = np.linalg.norm(before[0] - before[2]) + 1.0
                    if np.linalg.norm(nearest.mean(0) - centre) < 2.0 * size:  # not a jump to another face
                        chosen[k] = before = nearest
        missing = [k for k in range(count) if chosen[k] is None]
        points = smooth(interpolate(chosen))
        return Track([_alignment(p, frame_def, self.size) for p in points], missing)


def interpolate(points: list[np.ndarray | None]) -> np.ndarray:
    """[N, 5, 2]: the frames without landmarks (None) interpolated linearly between the nearest
    frames with, held at the clip's ends."""
    found = [k for k, p in enumerate(points) if p is not None]
    known = np.stack([points[k] for k in found]).reshape(len(found), -1)
    frames = np.arange(len(points))
    out = np.stack([np.interp(frames, found, known[:, j]) for j in range(known.shape[1])], axis=1)
    return out.reshape(len(points), 5, 2)


def smooth(points: np.ndarray, radius: int = SMOOTH_RADIUS) -> np.ndarray:
    """Each coordinate of [N, 5, 2] landmarks smoothed over time by a local quadratic fit
    (Savitzky-Golay: least squares over the 2 `radius` + 1 frames around each, the window held
    inside the clip at its ends): the detector's jitter is averaged away, while a steady or
    accelerating motion passes unchanged (no lag, unlike a moving average)."""
    count = len(points)
    if radius <= 0 or count < 4:
        return points
    radius = min(radius, (count - 1) // 2)
    flat = points.reshape(count, -1)
    offsets = np.arange(-radius, radius + 1)
    design = np.vander(offsets, 3, increasing=True)          # 1, k, k^2
    fit = np.linalg.pinv(design)                              # [3, 2r + 1]: coefficients from samples
    out = np.empty_like(flat)
    for t in range(count):
        start = min(max(t - radius, 0), count - 2 * radius - 1)  # the window, held inside the clip
        coefficients = fit @ flat[start:start + 2 * radius + 1]
        k = t - (start + radius)
        out[t] = coefficients[0] + coefficients[1] * k + coefficients[2] * k * k
    return out.reshape(points.shape)


def _alignment(points: np.ndarray, frame_def: FaceFrame, size: tuple[int, int]) -> Alignment:
    return Alignment(framed_quad(quad_from_landmarks(points), frame_def), "landmarks", size)


def fixed_track(frame: np.ndarray, count: int, how: str, frame_def: FaceFrame) -> Track:
    """Every frame the same square, found on `frame` by `how` ("center" or "box")."""
    alignment = align(frame, how, frame_def)
    return Track([alignment] * count, [])


def carry_mask(aligned: np.ndarray, alignment: Alignment) -> np.ndarray:
    """A mask in the generator's square ([R, R] bool) placed on a frame by its `alignment`:
    [H, W] bool, nothing outside the square."""
    width, height = alignment.photo_size
    size = aligned.shape[0]
    up = 4  # the square's mask supersampled, so that its edge lands where it should to a quarter pixel
    big = cv2.resize(aligned.astype(np.float32), (size * up, size * up), interpolation=cv2.INTER_NEAREST)
    warped = cv2.warpAffine(big, alignment.to_photo(size * up), (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return warped > 0.5
