"""What the hole scripts (`fill_starts.py`, `fill_detail.py`) share: their image arguments, the
generator, the images and LPIPS set up once, and a fill's scores inside the hole.

Fills are [N, 3, R, R] in [-1, 1] (one row per image); `keep` is the observed-pixel mask.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ilo_core.accelerate import set_up_process  # noqa: E402
from ilo_core.evaluate import EvalImage, evaluation_images  # noqa: E402
from ilo_core.generators import SplitGenerator, load_generator  # noqa: E402
from ilo_core.metrics import hole_mse01, paste_observed, psnr_from_mse  # noqa: E402
from ilo_core.perceptual import PerceptualDistance  # noqa: E402

MASKS = ("box", "eyes", "strokes", "half")  # the evaluation's painted masks


@dataclass
class HoleBench:
    generator: SplitGenerator
    images: list[EvalImage]
    clean: Tensor                 # [N, 3, R, R] in [-1, 1]
    lpips: PerceptualDistance     # alex, native size (the evaluation's hole LPIPS)

    def scores(self, fill: Tensor, keep: Tensor) -> list[tuple[float, float]]:
        """(hole PSNR dB, hole LPIPS with the observed pixels pasted back) per image."""
        fill = fill.clamp(-1, 1).to(self.clean.device)
        hole = hole_mse01(fill, self.clean, ~keep)
        dist = self.lpips(paste_observed(fill, self.clean, keep), self.clean)
        return [(psnr_from_mse(float(h)), float(d)) for h, d in zip(hole, dist)]


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """--images, --samples, --seeds (observation and start seeds 0 .. seeds - 1)."""
    parser.add_argument("--images", default=None)
    parser.add_argument("--samples", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=2)


def set_up(args: argparse.Namespace) -> HoleBench:
    """The process, the default generator on the CPU, the images of `args` and LPIPS."""
    set_up_process()
    g = load_generator("default", "cpu")
    images = evaluation_images(g, args.images, args.samples)
    return HoleBench(g, images, torch.cat([im.image for im in images]),
                     PerceptualDistance("alex", size=None, device=g.device))
