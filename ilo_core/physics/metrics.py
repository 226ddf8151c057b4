"""Image-quality metrics on images in [-1, 1], reported in [0, 1] pixel units."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def measurement_mse(predicted: Tensor, observed: Tensor) -> Tensor:
    """Mean squared error over everything but the batch dimension -> [B] (measurements as they are)."""
    return (predicted - observed).square().flatten(1).mean(1)


def mse01(x: Tensor, y: Tensor) -> Tensor:
    """Per-item MSE of images in [-1, 1], measured in [0, 1] units -> [B]."""
    return ((x.clamp(-1, 1) - y.clamp(-1, 1)) / 2).square().flatten(1).mean(1)


def psnr01(x: Tensor, y: Tensor) -> Tensor:
    """Per-item PSNR in dB (peak 1 in [0, 1] units) -> [B]."""
    return -10 * torch.log10(mse01(x, y).clamp_min(1e-12))


def psnr_from_mse(mse: float) -> float:
    return -10 * math.log10(max(mse, 1e-12))


def hole_mse01(x: Tensor, y: Tensor, missing: Tensor) -> Tensor:
    """Per-item MSE in [0, 1] units over the missing pixels only -> [B]; missing: [H, W] or [B|1, 1, H, W] bool."""
    m = missing.to(x.device).bool()
    while m.ndim < 4:
        m = m[None]
    m = m.expand(x.shape[0], x.shape[1], -1, -1).float()
    err = ((x.clamp(-1, 1) - y.clamp(-1, 1)) / 2).square() * m
    return err.flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1)


def paste_observed(x: Tensor, observed_image: Tensor, keep: Tensor) -> Tensor:
    """x with its observed pixels (keep [.., H, W] True) replaced by the observation's: [B, 3, H, W]."""
    return torch.where(keep.to(x.device).bool(), observed_image, x)
