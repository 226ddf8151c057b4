"""Generators that the solver can split at any layer, and loading them."""

from __future__ import annotations

from ilo_core.generators.base import SplitGenerator, State, Variables
from ilo_core.generators.dcgan import DCGANGenerator
from ilo_core.generators.loading import CheckpointError, load_generator, read_torch_checkpoint, resolve_device
from ilo_core.generators.stylegan2 import StyleGAN2Generator

__all__ = ["SplitGenerator", "State", "Variables", "DCGANGenerator", "StyleGAN2Generator", "CheckpointError",
           "load_generator", "read_torch_checkpoint", "resolve_device"]
