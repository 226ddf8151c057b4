"""The generators as split maps G = G_after_s o G_before_s (`SplitGenerator`): the plain
architectures. Reading them from checkpoints is `ilo_core.checkpoints`."""

from __future__ import annotations

from ilo_core.generators.base import FaceFrame, SplitGenerator, State, Tuning, Variables
from ilo_core.generators.dcgan import DCGANGenerator
from ilo_core.generators.stylegan2 import StyleGAN2Generator

__all__ = ["DCGANGenerator", "FaceFrame", "SplitGenerator", "State", "StyleGAN2Generator", "Tuning", "Variables"]
