"""Generators that the solver can split at any layer."""

from __future__ import annotations

from pathlib import Path

import torch

from ilo_core.generators.base import SplitGenerator, State, Variables
from ilo_core.generators.dcgan import DCGANGenerator
from ilo_core.generators.stylegan2 import StyleGAN2Generator
from ilo_core.memory import keep_freed_memory

__all__ = ["SplitGenerator", "State", "Variables", "DCGANGenerator", "StyleGAN2Generator",
           "load_generator", "resolve_device"]


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA GPU is available")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}: use auto, cpu or cuda")
    return torch.device(device)


def load_generator(spec: str | Path = "default", device: str | torch.device = "cpu") -> SplitGenerator:
    """'default' -> the embedded DigiFace DCGAN; a path -> a rosinality StyleGAN-2 checkpoint.

    Also tunes malloc to keep freed memory (see `ilo_core.memory`): large generators page-fault
    less.
    """
    keep_freed_memory()
    device = resolve_device(device) if isinstance(device, str) else device
    if str(spec) == "default":
        return DCGANGenerator.load(device=device)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"generator checkpoint not found: {path}")
    try:
        return StyleGAN2Generator.load(path, device=device)
    except (RuntimeError, KeyError, ValueError, OSError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{path.name} is not a usable rosinality StyleGAN-2 checkpoint: {first}") from None
