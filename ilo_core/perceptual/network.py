"""The LPIPS v0.1 network (alex or vgg), plain: its input scaling, the ImageNet backbone's
feature layers cut into its five slices, unit-normalised features and its calibrated
per-channel weights (`ilo_core.perceptual.weights` says where they come from). Built here
instead of through `lpips.LPIPS`, which imports torchvision (about 2 s) and initialises the
whole ImageNet classifier at random only to keep its feature layers; the tests check both
give the same distances. Its fast form is `ilo_core.accelerate.lpips`; the distance a solve
uses is `ilo_core.perceptual.distance`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ilo_core.perceptual.weights import BACKBONE_FILES, SCALE, SHIFT, SLICES, calibration_weights, feature_layers, \
    load_backbone

EPS = 1e-10  # LPIPS's normalize_tensor epsilon


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


def unit_normalize(f: Tensor) -> Tensor:
    """LPIPS's normalisation: each pixel's feature vector [B, C, H, W] divided by its length (+ EPS)."""
    return f / (f.square().sum(1, keepdim=True).sqrt() + EPS)


def feature_distance(weights: list[Tensor], fa: list[Tensor], fb: list[Tensor]) -> Tensor:
    """LPIPS from two unit-normalised feature lists -> [B]: sum_k mean_hw sum_c w_kc (a - b)^2."""
    total = 0
    for w, a, b in zip(weights, fa, fb):
        total = total + (a - b).square().mean((2, 3)) @ w
    return total
