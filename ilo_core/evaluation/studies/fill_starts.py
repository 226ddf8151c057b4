"""Hole fill against the number of averaged starts: the measurement behind `Tuning.fill_starts`.

    python -m ilo_core.evaluation.studies fill_starts [--images DIR] [--samples N] [--seeds 2] [--starts 8]

Every inpainting mask of the evaluation (box, eyes, strokes, right half) on every image, ILO
from `--starts` random starts solved as one batch; the mean of the first k starts is scored
for k = 1, 2, 4, ... (hole PSNR dB / hole LPIPS with the observed pixels pasted back), for
the default schedule and for the earlier three-round hole schedule, beside OpenCV's Telea.
Images: the faces in assets/ (or --images), plus --samples held-out generator samples.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from ilo_core.engine.methods import solve
from ilo_core.evaluation.grid_definition import Setting, classical_inpaint, inpainting_mask, method_config
from ilo_core.evaluation.studies.hole_bench import MASKS, add_image_arguments, set_up
from ilo_core.physics.problems import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_image_arguments(parser)
    parser.add_argument("--starts", type=int, default=8)
    args = parser.parse_args()
    bench = set_up(args)
    g, clean = bench.generator, bench.clean
    n, k = len(bench.images), args.starts
    counts = [c for c in (1, 2, 4, 6, 8, 16, 32) if c <= k]
    scores: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for shape in MASKS:
        setting = Setting("inpaint", shape, 0.0, {"mask": inpainting_mask(shape, g.resolution)})
        for seed in range(args.seeds):
            problem = simulate("inpaint", clean, seed=seed, **setting.params)
            keep = problem.operator.keep
            fills = {"telea": classical_inpaint(problem, "telea")}
            for schedule in ("4 rounds", "3 rounds"):
                cfg = method_config(g, setting, "ilo", 50, None, seed)
                cfg = dataclasses.replace(cfg, estimate=dataclasses.replace(cfg.estimate, starts=k))
                if schedule == "3 rounds":  # the earlier hole default: 67, 67, 66 steps
                    cfg = dataclasses.replace(cfg, steps=(67, 67, 66), radii={n_: v[:3] for n_, v in cfg.radii.items()})
                job = solve(g, problem.operator, problem.observation, cfg)
                rows = job.solver.best_image().view(n, k, *clean.shape[1:])
                for c in counts:
                    fills[f"{schedule}, mean of {c}"] = rows[:, :c].mean(1)
            for name, fill in fills.items():
                scores.setdefault((name, shape), []).extend(bench.scores(fill, keep))
            print(f"{shape} seed {seed} done", file=sys.stderr, flush=True)
    print("| fill | " + " | ".join(MASKS) + " | box/eyes/strokes |")
    print("|---|" + "---:|" * (len(MASKS) + 1))
    for name in dict.fromkeys(name for name, _ in scores):
        cells = [scores[(name, s)] for s in MASKS]
        psnr = [float(np.mean([p for p, _ in c])) for c in cells]
        print(f"| {name} | " + " | ".join(f"{p:.2f} dB / {np.mean([d for _, d in c]):.3f}" for p, c in zip(psnr, cells))
              + f" | {np.mean(psnr[:3]):.2f} |")


if __name__ == "__main__":
    main()
