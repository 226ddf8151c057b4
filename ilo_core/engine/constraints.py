"""Projections used by projected gradient descent in ILO.

- `project_l1_ball`: exact Euclidean projection onto {x : ||x||_1 <= r}, per batch item
  (Duchi, Shalev-Shwartz, Singer, Chandra 2008; sort-based, O(n log n)).
- `project_sphere`: rescale rows to given norms (PULSE's spherical latent constraint).
"""

from __future__ import annotations

import torch
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
