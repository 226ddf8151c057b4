"""What a cell asks of a worker, declared from the generator's output size and the batch.

A cell's GPU memory grows with the pixels it renders (activations and their gradients), so its
share of one card is (resolution / 1024)^2 x batch, rounded up to 1/8 and at most 1: a 1024 px
cell holds a whole GPU, eight 256 px cells (or four 512 px ones) share one. A cell's CPUs are the
threads its tensors run on: a float32 matrix product's sums are ordered by its threads, so the
thread count is part of what a cell's numbers depend on (and of its spec).
"""

from __future__ import annotations

import math

from ilo_core.cluster.cells import Resources

FULL_CARD_PIXELS = 1024 * 1024
SHARE_STEP = 8  # shares are multiples of 1/8 of a card


def gpu_share(resolution: int, batch: int) -> float:
    """A cell's share of one GPU (1/8 .. 1)."""
    need = resolution * resolution * max(batch, 1) / FULL_CARD_PIXELS
    return min(1.0, math.ceil(need * SHARE_STEP) / SHARE_STEP)


def cell_resources(resolution: int, batch: int, gpus: bool, share: float | None = None, cpus: int = 1) -> Resources:
    """`cpus` CPUs, and a GPU share (`share`, else `gpu_share`) when the cells run on GPUs."""
    if not gpus:
        return Resources(cpus=float(cpus), gpus=0.0)
    return Resources(cpus=float(cpus), gpus=share if share is not None else gpu_share(resolution, batch))
