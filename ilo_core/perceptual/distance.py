"""LPIPS (v0.1, alex or vgg) that works offline and starts fast.

The network is LPIPS's own: its input scaling, the ImageNet backbone's feature layers cut
into its five slices, unit-normalised features, and its calibrated per-channel weights
(`ilo_core.perceptual.weights` says where they come from). It is built here instead of through
`lpips.LPIPS`, which imports torchvision (and with it torch._dynamo: about 2 s) and
initialises the whole ImageNet classifier at random only to keep its feature layers; the
tests check both give the same distances. `get_lpips` shares one read-only network per
(net, device), accelerated by `ilo_core.accelerate` unless the reference switch is set.
"""

from __future__ import annotations

import functools
import threading

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ilo_core.accelerate import accelerate, reference_requested
from ilo_core.perceptual.weights import BACKBONE_FILES, SCALE, SHIFT, SLICES, calibration_weights, feature_layers, \
    load_backbone

EPS = 1e-10  # LPIPS's normalize_tensor epsilon
_LOCK = threading.Lock()


class LPIPSNetwork(nn.Module):
    """Frozen LPIPS v0.1 trunk: images [B, 3, H, W] in [-1, 1] -> five feature maps."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in BACKBONE_FILES:
            raise ValueError(f"LPIPS net must be 'alex' or 'vgg', got {net!r}")
        layers = feature_layers(net)
        load_backbone(layers, net)
        self.slices = nn.ModuleList(nn.Sequential(*layers[a:b]) for a, b in SLICES[net])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        for k, w in enumerate(calibration_weights(net)):
            self.register_buffer(f"weight{k}", w)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    @property
    def weights(self) -> list[Tensor]:
        """The calibrated per-channel weights of the five slices, [C_k] each."""
        return [getattr(self, f"weight{k}") for k in range(5)]

    def forward(self, x: Tensor) -> list[Tensor]:
        h = (x - self.shift) / self.scale
        outs = []
        for block in self.slices:
            h = block(h)
            outs.append(h)
        return outs

    def fixed_target_distance(self, feats: list[Tensor], targets: list[Tensor]) -> Tensor:
        """sum_k mean_hw sum_c w_kc (unit_normalize(f_k) - t_k)^2 -> [B], for this network's
        raw features `feats` and fixed unit-length targets."""
        return feature_distance(self.weights, [unit_normalize(f) for f in feats], targets)


@functools.lru_cache(maxsize=8)
def _shared_lpips(net: str, device: str, reference: bool) -> nn.Module:
    return accelerate(LPIPSNetwork(net), reference=reference).to(device)


def get_lpips(net: str = "alex", device: str | torch.device = "cpu", reference: bool | None = None) -> nn.Module:
    """A shared, read-only LPIPS trunk per (net, device): an `LPIPSNetwork` or its accelerated
    form (same interface); safe to call from several threads. Never move or modify it."""
    reference = reference_requested() if reference is None else reference
    with _LOCK:
        return _shared_lpips(net, str(torch.device(device)), bool(reference))


def unit_normalize(f: Tensor) -> Tensor:
    """LPIPS's normalisation: each pixel's feature vector [B, C, H, W] divided by its length (+ EPS)."""
    return f / (f.square().sum(1, keepdim=True).sqrt() + EPS)


def feature_distance(weights: list[Tensor], fa: list[Tensor], fb: list[Tensor]) -> Tensor:
    """LPIPS from two unit-normalised feature lists -> [B]: sum_k mean_hw sum_c w_kc (a - b)^2."""
    total = 0
    for w, a, b in zip(weights, fa, fb):
        total = total + (a - b).square().mean((2, 3)) @ w
    return total


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
