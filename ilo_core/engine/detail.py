"""Fill detail: the mean of several starts, with one start's fine detail put back in the hole.

The mean of K starts (`SolverConfig.mean_of`) is the lower-error fill of a hole, but where the
starts disagree it is blurred: its high frequencies average away. `with_detail` adds, inside
the hole only, the high frequencies (the image minus its Gaussian blur of `sigma` pixels) of the
start closest to the mean (the medoid, a real guess rather than an average). This trades a
little hole PSNR for a sharper fill (lower LPIPS): the perception-distortion trade-off (Blau and
Michaeli, CVPR 2018), with `sigma` as its knob (0 = the plain mean). Images are [K, 3, R, R]
or [1, 3, R, R] in [-1, 1]; masks [1, 1, R, R] bool, True = missing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of [B, C, H, W] (reflected borders, radius 3 sigma)."""
    radius = max(1, int(3 * sigma + 0.5))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-t.square() / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1),
                 groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1),
                    groups=c)


def medoid(starts: Tensor) -> Tensor:
    """The start [1, 3, R, R] closest (in MSE) to the mean of `starts` [K, 3, R, R]."""
    mean = starts.mean(0, keepdim=True)
    return starts[int((starts - mean).square().flatten(1).mean(1).argmin())][None]


def hole_detail(starts: Tensor, missing: Tensor, sigma: float) -> Tensor:
    """What `with_detail` adds to the mean of `starts` [K, 3, R, R]: the medoid's high
    frequencies inside the hole (`missing` [1, 1, R, R] bool), zero elsewhere -> [1, 3, R, R]."""
    if sigma <= 0 or starts.shape[0] < 2:
        return torch.zeros_like(starts[:1])
    pick = medoid(starts.clamp(-1, 1))
    return (pick - gaussian_blur(pick, sigma)) * missing.to(starts.device, starts.dtype)


def with_detail(starts: Tensor, missing: Tensor, sigma: float) -> Tensor:
    """The mean of `starts` [K, 3, R, R] plus `hole_detail`: [1, 3, R, R] (not clamped)."""
    return starts.mean(0, keepdim=True) + hole_detail(starts, missing, sigma)
