"""Super-resolution's bicubic resizes as precomputed matrices (`MatrixSuperResolution`).

A bicubic resize is separable and linear: resize(X) = R @ X @ R^T for a fixed [n_out, n_in]
matrix R. Up to a 256 px low-resolution side the two resizes of super-resolution (down for
A, up for the perceptual view) run as two matrix products each: the same maps as
F.interpolate up to float rounding, faster forward + backward on CPU (docs/benchmark.md);
above that (e.g. 1024 px x2) the dense matrices lose to F.interpolate's banded kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ilo_core.physics.operators import SuperResolution

MATRIX_MAX_LOW_RES = 256  # resizes run as matrix products up to this low-resolution side


def resize_matrix(n_in: int, n_out: int, antialias: bool) -> Tensor:
    """[n_out, n_in] matrix R with R @ column = F.interpolate's bicubic resize of that column
    (align_corners=False): the resize of an image is then R @ X @ R^T (it is separable)."""
    basis = torch.eye(n_in, dtype=torch.float64)[None, None]  # column j is the j-th unit vector
    return F.interpolate(basis, size=(n_out, n_in), mode="bicubic", antialias=antialias,
                         align_corners=False)[0, 0].float()


def separable_resize(x: Tensor, rows: Tensor) -> Tensor:
    """x [B, C, H, H] -> rows @ x @ rows^T [B, C, M, M], for rows [M, H] (see `resize_matrix`)."""
    return torch.matmul(torch.matmul(rows, x), rows.t())


class MatrixSuperResolution(SuperResolution):
    """`SuperResolution` with both resizes as matrix products (the same maps)."""

    def __init__(self, factor: int, size: int) -> None:
        super().__init__(factor, size)
        low = self.size // self.factor
        self.register_buffer("down", resize_matrix(self.size, low, antialias=True))
        self.register_buffer("up", resize_matrix(low, self.size, antialias=False))

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        return separable_resize(x, self.down)

    def perceptual_view(self, y: Tensor, current: Tensor) -> Tensor:
        return separable_resize(y, self.up).clamp(-1, 1)


def accelerate_super_resolution(op: SuperResolution) -> SuperResolution:
    """The matrix form where the low-resolution side is at most MATRIX_MAX_LOW_RES, else `op`."""
    if type(op) is not SuperResolution or op.size // op.factor > MATRIX_MAX_LOW_RES:
        return op
    buffers = list(op.buffers())
    return MatrixSuperResolution(op.factor, op.size).to(buffers[0].device if buffers else "cpu")
