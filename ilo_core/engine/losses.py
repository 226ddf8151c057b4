"""The ILO objective's prior term (the measurement term is `ilo_core.physics.metrics.measurement_mse`).
All return one value per batch item, shape [B]."""

from __future__ import annotations

import torch
from torch import Tensor


def geodesic_loss(rows: Tensor) -> Tensor:
    """PULSE's geocross loss on latent rows [B, n, d] -> [B].

    The pairwise angle 2 * atan2(|x - y|, |x + y|) between every two rows, squared,
    averaged over all pairs and scaled by d / 8. Zero when all rows are equal.
    """
    if rows.shape[1] < 2:
        return rows.new_zeros(rows.shape[0])
    x, y = rows[:, :, None, :], rows[:, None, :, :]
    angle = 2 * torch.atan2((x - y).norm(dim=-1), (x + y).norm(dim=-1))  # [B, n, n]
    return angle.square().flatten(1).mean(1) * rows.shape[-1] / 8
