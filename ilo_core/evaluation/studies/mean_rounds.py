"""Hole fill against the rounds each start adds to the mean: the measurement behind `Tuning.fill_rounds`.

    python -m ilo_core.evaluation.studies mean_rounds [--images DIR] [--samples N] [--seeds 2] [--align landmarks|box]

Every inpainting mask of the evaluation (box, eyes, strokes, right half) and random pixels at
5-50 % on every image: ILO's default solve once (the mean of `Tuning.fill_starts` starts), its
answer rebuilt from each start's best iterates of its last 1, 2 (the default,
`Estimate.rounds_averaged`, for holes and random pixels below 20 % observed) and 3 rounds, with
the default fill detail on the holes (the medoid of all the averaged iterates, as
`ilo_core.engine.methods.Solve` does), and without detail with a weight w on the round before the last
(w = 0.5 is the mean of the two). Beside OpenCV's Telea. Holes: hole PSNR dB / hole LPIPS (alex,
the observed pixels pasted back); random pixels: whole-image PSNR dB / LPIPS as the method
returns the image (the evaluation's true MSE). Images: the faces in assets/ (or --images), plus
--samples held-out generator samples; one table row per kind of image and fill.
"""

from __future__ import annotations

import argparse
import sys

import torch

from ilo_core.engine.estimate import with_detail
from ilo_core.engine.estimate import with_earlier_rounds
from ilo_core.engine.methods import solve
from ilo_core.evaluation.grid_definition import Setting, classical_inpaint, inpainting_mask, method_config
from ilo_core.evaluation.studies.hole_bench import MASKS, add_image_arguments, averaged_rows, print_table, set_up
from ilo_core.physics.metrics import mse01, psnr_from_mse
from ilo_core.physics.problems import simulate

SETTINGS = [Setting("inpaint", shape, 0.0, {"mask": None}) for shape in MASKS] + \
    [Setting("random-inpaint", f"{p}%", float(p), {"observed": p / 100}) for p in (5, 10, 25, 50)]
WEIGHTS = (0.25, 0.5, 0.75)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_image_arguments(parser)
    args = parser.parse_args()
    bench = set_up(args)
    g, clean = bench.generator, bench.clean
    n = len(bench.images)
    kinds = [im.kind for im in bench.images]
    scores: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for setting in SETTINGS:
        if setting.task == "inpaint":
            setting = Setting("inpaint", setting.level, 0.0, {"mask": inpainting_mask(setting.level, g.resolution)})
        for seed in range(args.seeds):
            problem = simulate(setting.task, clean, seed=seed, **setting.params)
            keep = problem.operator.keep.cpu()  # [1, 1, R, R], True = observed
            config = method_config(g, setting, "ilo", 50, None, seed)
            job = solve(g, problem.operator, problem.observation, config)
            sigma = config.estimate.fill_detail
            fills = {"Telea": classical_inpaint(problem, "telea").cpu()}
            rows = {m: averaged_rows(job, n, m) for m in (1, 2, 3)}
            for m, images in rows.items():
                name = f"last {m} round{'s' if m > 1 else ''}"
                fills[name] = torch.cat([with_detail(r, ~keep, sigma) for r in images])  # holes: default detail
            last = torch.stack([r.mean(0) for r in rows[1]])
            pairs = with_earlier_rounds(job.solver.best, job.solver.best_after_round, 2)  # [last, before] per start
            before = torch.stack([torch.cat([p[-1].image for p in pairs[b * job.starts:(b + 1) * job.starts]]).mean(0)
                                  for b in range(n)]).cpu()
            for w in WEIGHTS:
                fills[f"weight {w:g} on the round before, no detail"] = (1 - w) * last + w * before
            for name, fill in fills.items():
                if setting.task == "inpaint":
                    cell = bench.scores(fill, keep)
                else:  # random pixels: the whole image as the method returns it (the evaluation's true MSE)
                    whole = [psnr_from_mse(float(e)) for e in mse01(fill.to(clean.device), clean)]
                    cell = [(p, float(d)) for p, d in zip(whole, bench.lpips(fill.to(clean.device).clamp(-1, 1), clean))]
                for kind, score in zip(kinds, cell):
                    scores.setdefault((kind, name, setting.level), []).append(score)
            print(f"{setting.level} seed {seed} done", file=sys.stderr, flush=True)
    print_table(scores, kinds, [s.level for s in SETTINGS])


if __name__ == "__main__":
    main()
