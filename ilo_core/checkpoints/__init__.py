"""Generators from checkpoint files, safely: every common StyleGAN-2 format, the safe
unpickler, conversion to `.safetensors`, and the downloader of official checkpoints by name."""

from __future__ import annotations

from ilo_core.checkpoints.loading import CheckpointError, load_generator, read_torch_checkpoint, resolve_device

__all__ = ["CheckpointError", "load_generator", "read_torch_checkpoint", "resolve_device"]
