"""Flicker: how much a repaired region changes from frame to frame beyond the scene's own motion.

The temporal warping error (Lai et al., ECCV 2018) of frame t: frame t - 1 moved onto frame t
by the motion between them (here known: a 2 x 3 affine map of frame t - 1's pixels to frame
t's), and the mean absolute difference to frame t over a region of frame t (0-255 units), where
the moved frame covers it. A clip's flicker in a region is the mean over its frames of the
repaired frames' warping error minus the true frames' (what the motion's resampling and a
brightness change leave even in a perfect repair).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def warping_error(previous: np.ndarray, current: np.ndarray, motion: np.ndarray, region: np.ndarray) -> float:
    """previous, current: H x W x 3 uint8; motion: 2 x 3 (previous's pixels -> current's);
    region: [H, W] bool in `current`. NaN when the moved frame covers none of the region."""
    height, width = current.shape[:2]
    moved = cv2.warpAffine(previous.astype(np.float32), motion, (width, height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    covered = cv2.warpAffine(np.ones((height, width), np.float32), motion, (width, height), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.999
    inside = region & covered
    if not inside.any():
        return float("nan")
    return float(np.abs(moved - current.astype(np.float32))[inside].mean())


def flicker(repaired: Sequence[np.ndarray], true: Sequence[np.ndarray], motions: Sequence[np.ndarray],
            regions: Sequence[np.ndarray]) -> float:
    """Mean over frames 1..N-1 of the repaired frames' warping error minus the true frames'
    (motions[t]: frame t - 1 -> t; regions[t]: [H, W] bool of frame t)."""
    values = [warping_error(repaired[t - 1], repaired[t], motions[t], regions[t])
              - warping_error(true[t - 1], true[t], motions[t], regions[t]) for t in range(1, len(repaired))]
    return float(np.nanmean(values))


def region_psnr(result: np.ndarray, truth: np.ndarray, region: np.ndarray) -> float:
    """PSNR (dB, [0, 1] units) of `result` against `truth` (H x W x 3 uint8) over region [H, W] bool."""
    diff = (result.astype(np.float64) - truth.astype(np.float64))[region] / 255.0
    mse = float(np.mean(diff ** 2))
    return float("inf") if mse == 0 else float(-10 * np.log10(mse))
