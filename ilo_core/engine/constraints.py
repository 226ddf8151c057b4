"""The feasible set of a round (Algorithm 1 line 4's projections), one function per constraint.

- `project_l1_ball`: exact Euclidean projection onto {x : ||x||_1 <= r}, per batch item
  (Duchi, Shalev-Shwartz, Singer, Chandra 2008; sort-based, O(n log n)): the l1 balls around
  each variable's value at the start of the round.
- `project_sphere`: rescale rows to given norms (PULSE's spherical latent constraint).
- `hole_cells` (`SolverConfig.hole_block`): on a painted hole, the cells of coarse state maps
  that lie wholly inside the hole keep their value at the round's start: no observed pixel is
  theirs, and moving them to fit the hole's border painted blotches into it.
- `relu_range` (`SolverConfig.relu_range`): state maps that follow a ReLU stay >= 0, the range of
  the layers before them (the l1 ball alone lets a round leave it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def project_l1_ball(x: Tensor, radius: float | Tensor) -> Tensor:
    """Project each item x[b] (any trailing shape) onto the l1 ball of `radius`.

    radius: a float or a [B] tensor, >= 0. Items already inside are returned unchanged.
    """
    shape = x.shape
    flat = x.reshape(shape[0], -1)
    radius = torch.as_tensor(radius, dtype=flat.dtype, device=flat.device).reshape(-1, 1).expand(shape[0], 1)
    if (radius < 0).any():
        raise ValueError("l1 radius must be non-negative")
    abs_x = flat.abs()
    inside = abs_x.sum(1, keepdim=True) <= radius
    if bool(inside.all()):
        return x
    mu = abs_x.sort(dim=1, descending=True).values
    cumsum = mu.cumsum(dim=1)
    ks = torch.arange(1, flat.shape[1] + 1, device=flat.device, dtype=flat.dtype)
    # rho = the largest k with mu_k > (cumsum_k - r) / k
    cond = mu * ks > (cumsum - radius)
    rho = cond.to(flat.dtype).mul(ks).argmax(dim=1, keepdim=True)  # index of the last True
    theta = (cumsum.gather(1, rho) - radius) / (rho + 1).to(flat.dtype)
    projected = flat.sign() * (abs_x - theta).clamp_min(0)
    return torch.where(inside, flat, projected).reshape(shape)


def project_sphere(x: Tensor, norms: Tensor, dim: int | tuple[int, ...] = -1) -> Tensor:
    """Rescale x so that its norm over `dim` equals `norms` (broadcastable, keepdim shape)."""
    current = torch.linalg.vector_norm(x, dim=dim, keepdim=True).clamp_min(1e-12)
    return x * (norms / current)


def hole_cells(missing: Tensor, state: dict[str, Tensor], hole_block: int) -> dict[str, Tensor]:
    """Per state map [B, C, s, s] whose cells cover at least `hole_block` px a side of the
    image's `missing` mask [1, 1, R, R] (float, 1 = missing): a [1, 1, s, s] bool, False where
    the cell lies wholly inside the hole (it keeps its value)."""
    size = missing.shape[-1]
    free = {}
    for name, t in state.items():
        if t.ndim == 4 and t.shape[-1] <= size and size // t.shape[-1] >= hole_block:
            inside = F.adaptive_avg_pool2d(missing, t.shape[-2:]) >= 1.0
            free[name] = ~inside
    return free


def keep_cells(p: Tensor, start: Tensor, free: Tensor) -> None:
    """In place: the cells of `p` that may not move (`free` False, from `hole_cells`) back to `start`."""
    p.copy_(torch.where(free, p, start))


def relu_range(p: Tensor) -> None:
    """In place: a state map that follows a ReLU back into its range, >= 0."""
    p.clamp_(min=0)
