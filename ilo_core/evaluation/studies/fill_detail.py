"""Hole fill against fill detail: the measurement behind `Estimate.fill_detail` (`Tuning.fill_detail`).

    python -m ilo_core.evaluation.studies fill_detail [--images DIR] [--samples N] [--seeds 2] [--sigmas 0,0.5,0.7,1,1.2]

Every inpainting mask of the evaluation (box, eyes, strokes, right half) on every image: ILO's
default solve (the mean of `Tuning.fill_starts` starts' last two rounds, the hole's coarse cells in
range), scored with each `--sigmas` value of fill detail put back into the hole (0 = the plain
mean; the same solve for every value), beside OpenCV's Telea and CSGM-MSE (one start, the same
200 steps). Hole PSNR dB / hole LPIPS (alex, the observed pixels pasted back). Images: the faces
in assets/ (or --images), plus --samples held-out generator samples; one table row per kind of
image and fill.
"""

from __future__ import annotations

import argparse
import sys

import torch

from ilo_core.engine.estimate import with_detail
from ilo_core.engine.methods import solve
from ilo_core.evaluation.grid_definition import Setting, classical_inpaint, inpainting_mask, method_config
from ilo_core.evaluation.studies.hole_bench import MASKS, add_image_arguments, averaged_rows, print_table, set_up
from ilo_core.physics.problems import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_image_arguments(parser)
    parser.add_argument("--sigmas", default="0,0.5,0.7,1,1.2")
    args = parser.parse_args()
    bench = set_up(args)
    g, clean = bench.generator, bench.clean
    n = len(bench.images)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    kinds = [im.kind for im in bench.images]
    scores: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for shape in MASKS:
        setting = Setting("inpaint", shape, 0.0, {"mask": inpainting_mask(shape, g.resolution)})
        for seed in range(args.seeds):
            problem = simulate("inpaint", clean, seed=seed, **setting.params)
            keep = problem.operator.keep
            fills = {"Telea": classical_inpaint(problem, "telea")}
            csgm = method_config(g, setting, "csgm-mse", 50, None, seed)
            fills["CSGM-MSE"] = solve(g, problem.operator, problem.observation, csgm).images()
            config = method_config(g, setting, "ilo", 50, None, seed)
            job = solve(g, problem.operator, problem.observation, config)
            rows = averaged_rows(job, n, config.estimate.rounds_averaged)  # what the default's answer averages
            for sigma in sigmas:
                name = f"ILO, mean of {config.estimate.starts}" + (f", detail {sigma:g} px" if sigma else "")
                fills[name] = torch.cat([with_detail(r, ~keep[0:1].cpu(), sigma) for r in rows])
            for name, fill in fills.items():
                for kind, score in zip(kinds, bench.scores(fill, keep)):
                    scores.setdefault((kind, name, shape), []).append(score)
            print(f"{shape} seed {seed} done", file=sys.stderr, flush=True)
    print_table(scores, kinds, list(MASKS))


if __name__ == "__main__":
    main()
