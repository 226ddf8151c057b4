"""The LPIPS distance a solve uses (v0.1, alex or vgg), offline and fast to start.

The network is `ilo_core.perceptual.network.LPIPSNetwork` (plain); `get_lpips` shares one
read-only network per (net, device), accelerated by `ilo_core.accelerate` unless the
reference switch is set, and `PerceptualDistance` measures with it.
"""

from __future__ import annotations

import functools
import threading

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ilo_core.accelerate import accelerate, reference_requested
from ilo_core.perceptual.network import LPIPSNetwork, feature_distance, unit_normalize

_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8)
def _shared_lpips(net: str, device: str, reference: bool) -> nn.Module:
    return accelerate(LPIPSNetwork(net), reference=reference).to(device)


def get_lpips(net: str = "alex", device: str | torch.device = "cpu", reference: bool | None = None) -> nn.Module:
    """A shared, read-only LPIPS trunk per (net, device): an `LPIPSNetwork` or its accelerated
    form (same interface); safe to call from several threads. Never move or modify it."""
    reference = reference_requested() if reference is None else reference
    with _LOCK:
        return _shared_lpips(net, str(torch.device(device)), bool(reference))


class PerceptualDistance:
    """LPIPS distance per batch item between images in [-1, 1], at `size` x `size` pixels.

    `features(x)` and `distance(fa, fb)` split the computation so that a fixed target's
    features are computed once; `distance_to(x, fb)` is `distance(features(x), fb)` for such
    a target (the solver uses it; the accelerated network computes it as one node). The
    spatial mean is taken before the calibrated 1x1 layer (both are linear), which equals
    lpips.LPIPS's order of operations up to float rounding. Not a module: the shared network
    it uses is never registered, moved or cast through it.
    """

    def __init__(self, net: str = "alex", size: int | None = 256, device: str | torch.device = "cpu") -> None:
        self.net_name, self.size = net, size
        self._network = get_lpips(net, device)
        self.weights = self._network.weights  # [C_k] each

    def _trunk(self, x: Tensor) -> list[Tensor]:
        if self.size is not None and x.shape[-1] != self.size:
            x = resize(x, self.size)
        return self._network(x)

    def features(self, x: Tensor) -> list[Tensor]:
        """Unit-length backbone features (per pixel, over channels) of x [B, 3, H, W] in [-1, 1]."""
        return [unit_normalize(f) for f in self._trunk(x)]

    def distance(self, fa: list[Tensor], fb: list[Tensor]) -> Tensor:
        """LPIPS from two feature lists (see `features`) -> [B]."""
        return feature_distance(self.weights, fa, fb)

    def distance_to(self, x: Tensor, fb: list[Tensor]) -> Tensor:
        """LPIPS between x [B, 3, H, W] in [-1, 1] and fixed features fb (see `features`) -> [B]."""
        return self._network.fixed_target_distance(self._trunk(x), [t.detach() for t in fb])

    def __call__(self, a: Tensor, b: Tensor) -> Tensor:
        """a, b: [B, 3, H, W] in [-1, 1] -> [B]."""
        if b.requires_grad:
            return self.distance(self.features(a), self.features(b))
        with torch.no_grad():
            fb = self.features(b)
        return self.distance_to(a, fb)


def resize(x: Tensor, size: int) -> Tensor:
    """Resize [B, C, H, W] to size x size: area-averaging down, bilinear up."""
    if x.shape[-1] > size:
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
