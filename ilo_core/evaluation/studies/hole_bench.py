"""What the hole scripts (`fill_starts.py`, `fill_detail.py`, `mean_rounds.py`) share: their image
arguments, the generator, the images and LPIPS set up once, the iterates a solve's answer
averages, and a fill's scores inside the hole.

Fills are [N, 3, R, R] in [-1, 1] (one row per image); `keep` is the observed-pixel mask.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ilo_core.accelerate import set_up_process
from ilo_core.checkpoints import load_generator
from ilo_core.engine.estimate import with_earlier_rounds
from ilo_core.engine.methods import Solve
from ilo_core.evaluation.grid_definition import CROPS, EvalImage, evaluation_images
from ilo_core.generators import SplitGenerator
from ilo_core.perceptual.distance import PerceptualDistance
from ilo_core.physics.metrics import hole_mse01, paste_observed, psnr_from_mse

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


def averaged_rows(job: Solve, images: int, rounds_averaged: int) -> list[Tensor]:
    """Per image, the iterates [M, 3, R, R] in [-1, 1] that an answer with `rounds_averaged` averages,
    from one solve: each start's best iterate and its best of the rounds before (`with_earlier_rounds`)."""
    solver, starts = job.solver, job.starts
    groups = with_earlier_rounds(solver.best, solver.best_after_round, rounds_averaged)
    return [torch.cat([it.image for g in groups[b * starts:(b + 1) * starts] for it in g]).cpu()
            for b in range(images)]


def print_table(scores: dict[tuple[str, str, str], list[tuple[float, float]]], kinds: list[str],
                columns: list[str]) -> None:
    """A markdown table of `scores` ((image kind, fill, column) -> (hole PSNR, hole LPIPS) per image):
    one row per kind of image and fill, one cell per column and the mean of the first three (the
    small holes: box, eyes, strokes)."""
    print("| images | fill | " + " | ".join(columns) + " | box/eyes/strokes |")
    print("|---|---|" + "---:|" * (len(columns) + 1))
    for kind in dict.fromkeys(kinds):
        for name in dict.fromkeys(name for k, name, _ in scores if k == kind):
            cells = [scores[(kind, name, c)] for c in columns]
            psnr = [float(np.mean([p for p, _ in c])) for c in cells]
            lp = [float(np.mean([d for _, d in c])) for c in cells]
            label = {"face": "example faces", "sample": "generator samples"}.get(kind, "your images")
            print(f"| {kinds.count(kind)} {label} | {name} | " + " | ".join(f"{p:.2f} / {d:.3f}" for p, d in zip(psnr, lp))
                  + f" | {np.mean(psnr[:3]):.2f} / {np.mean(lp[:3]):.3f} |")


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """--images, --samples, --seeds (observation and start seeds 0 .. seeds - 1), --align (the crop)."""
    parser.add_argument("--images", default=None)
    parser.add_argument("--samples", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--align", choices=CROPS, default="landmarks",
                        help="how the photos are cut (as the evaluation's --align; box: the earlier tables' crop)")


def set_up(args: argparse.Namespace) -> HoleBench:
    """The process, the default generator on the CPU, the images of `args` and LPIPS."""
    set_up_process()
    g = load_generator("default", "cpu")
    images = evaluation_images(g, args.images, args.samples, align_how=args.align)
    return HoleBench(g, images, torch.cat([im.image for im in images]),
                     PerceptualDistance("alex", size=None, device=g.device))
