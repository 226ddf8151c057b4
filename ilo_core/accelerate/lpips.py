"""The LPIPS network's fast form (`AcceleratedLPIPS`): channels-last, a packed trunk on CPU,
and the distance to a fixed target as one autograd node.

- Channels-last: batch-1 convolutions on small maps then take oneDNN's kernels instead of
  the slow im2col path.
- On CPU the trunk is one autograd node over prepacked oneDNN convolutions
  (`packed_trunk`), checked against the plain trunk when it is built.
- `fixed_target_distance` is one node with a written-out backward instead of about fifteen
  small autograd nodes per slice; it also gives 0, not NaN, where a pixel's features are
  all zero.
The figures are in docs/benchmark.md.
"""

from __future__ import annotations

import itertools
import warnings

import torch
from torch import Tensor, nn

from ilo_core.accelerate.packed_conv import packed_form_agrees
from ilo_core.accelerate.packed_trunk import PackedTrunk

EPS = 1e-10  # LPIPS's normalize_tensor epsilon


class _NormalizedFeatureDistance(torch.autograd.Function):
    """sum_k mean_hw sum_c w_kc (unit_normalize(f_k) - t_k)^2 -> [B], for fixed targets t_k.

    One node with a written-out backward instead of about fifteen small autograd nodes per
    slice. For u = f / (r + EPS), r = |f|:
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


class AcceleratedLPIPS(nn.Module):
    """An `LPIPSNetwork`'s map, faster (see the module notes); same interface: x [B, 3, H, W]
    in [-1, 1] -> five feature maps, `weights`, `fixed_target_distance`."""

    def __init__(self, plain: nn.Module) -> None:
        super().__init__()
        self.plain = plain.to(memory_format=torch.channels_last)
        self.trunk: PackedTrunk | None = None
        if plain.shift.device.type == "cpu":
            layers = [layer for block in plain.slices for layer in block]
            ends = list(itertools.accumulate(len(block) for block in plain.slices))
            trunk = PackedTrunk.build(layers, ends, lambda: plain.shift, lambda: plain.scale)
            probe = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
            if trunk is not None and not packed_form_agrees(self._unpacked, trunk, probe):
                warnings.warn("LPIPS: the packed trunk disagrees with the plain one or cannot run here; "
                              "using plain convolutions")
                trunk = None
            self.trunk = trunk

    @property
    def weights(self) -> list[Tensor]:
        return self.plain.weights

    def _unpacked(self, x: Tensor) -> list[Tensor]:
        """The plain trunk on a channels-last input (its scaling keeps the layout)."""
        return self.plain(x.contiguous(memory_format=torch.channels_last))

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = None if self.trunk is None else self.trunk(x)  # None off a float32 CPU
        return self._unpacked(x) if outs is None else outs

    def fixed_target_distance(self, feats: list[Tensor], targets: list[Tensor]) -> Tensor:
        """As `LPIPSNetwork.fixed_target_distance`, one autograd node."""
        return _NormalizedFeatureDistance.apply(self.weights, targets, *feats)
