"""How much ilo-auto could gain on painted holes, and whether a hole-shaped held-out copy finds it.

    python -m ilo_core.evaluation.studies auto_holes [--images DIR] [--samples N] [--seeds 2]

ilo-auto chooses a schedule (every radius x 0.25 / 1 / 4, 2-4 rounds) by the error on held-out
observed pixels; for a painted hole it holds out a ring around the hole (`ilo_core.engine.auto`). This
script measures, on the evaluation's small masks (box, eyes, strokes), ILO's default solve (the
mean of its starts) with each of the 9 schedules:

- the hole PSNR of each schedule on all observations: the default's, the best single schedule's
  and the oracle's (the best schedule per image, mask and seed: what a perfect chooser reaches);
- the choice of a second held-out design: a copy of the hole's shape moved to the nearest place
  where at least COPY_OBSERVED of it lies on observed pixels (`hole_copy`), held out, every
  schedule solved without it and scored on it; the copy's best schedule replaces the default when
  it is better by `--margin` dB there. Its hole PSNR on all observations is the design's result.

Images: the faces in assets/ (or --images), plus --samples held-out generator samples; one row
per kind of image and mask.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from torch import Tensor

from ilo_core.engine.auto import SCALES, _schedule
from ilo_core.engine.methods import solve
from ilo_core.evaluation.grid_definition import Setting, inpainting_mask, method_config
from ilo_core.evaluation.studies.hole_bench import add_image_arguments, set_up
from ilo_core.physics.metrics import hole_mse01, psnr_from_mse
from ilo_core.physics.operators import Inpainting
from ilo_core.physics.problems import simulate

SMALL_MASKS = ("box", "eyes", "strokes")
ROUNDS = (2, 3, 4)    # the schedules' rounds (ilo-auto's: 2 up to the default's 4)
COPY_OBSERVED = 0.75  # share of the hole's area the moved copy must cover outside the hole


def hole_copy(missing: Tensor) -> tuple[Tensor, tuple[int, int]] | None:
    """The hole [R, R] bool moved by the shortest shift (|dy| + |dx|) that keeps it inside the
    image with at least COPY_OBSERVED of its area outside the hole -> (the copy's pixels outside
    the hole [R, R] bool, the shift (dy, dx) in px), or None (a hole too large to copy)."""
    size = missing.shape[0]
    ys, xs = torch.nonzero(missing, as_tuple=True)
    need = COPY_OBSERVED * float(missing.sum())
    shifts = sorted(((dy, dx) for dy in range(-size + 1, size) for dx in range(-size + 1, size)),
                    key=lambda s: (abs(s[0]) + abs(s[1]), s))
    for dy, dx in shifts:
        if ys.min() + dy < 0 or ys.max() + dy >= size or xs.min() + dx < 0 or xs.max() + dx >= size:
            continue
        copy = torch.zeros_like(missing)
        copy[ys + dy, xs + dx] = True
        copy &= ~missing
        if float(copy.sum()) >= need:
            return copy, (dy, dx)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_image_arguments(parser)
    parser.add_argument("--margin", type=float, default=0.0, help="dB the copy's best must beat the default by")
    args = parser.parse_args()
    bench = set_up(args)
    g, clean = bench.generator, bench.clean
    kinds = [im.kind for im in bench.images]
    schedules = [(scale, rounds) for scale in SCALES for rounds in ROUNDS]
    rows: dict[tuple[str, str], list[dict]] = {}
    for shape in SMALL_MASKS:
        mask = inpainting_mask(shape, g.resolution)
        copy, (dy, dx) = hole_copy(mask)
        print(f"{shape}: the held-out copy is the hole shifted by (dy, dx) = ({dy:+d}, {dx:+d}) px",
              file=sys.stderr, flush=True)
        setting = Setting("inpaint", shape, 0.0, {"mask": mask})
        for seed in range(args.seeds):
            problem = simulate("inpaint", clean, seed=seed, **setting.params)
            base = method_config(g, setting, "ilo", 50, None, seed)
            copy_held = Inpainting(problem.operator.keep & ~copy.to(clean.device)[None, None])
            truth, proxy = {}, {}
            for scale in SCALES:  # one solve per scale: a shorter schedule's answer is its best after that round
                cfg = _schedule(base, base.rounds, scale)
                full = solve(g, problem.operator, problem.observation, cfg)
                held = solve(g, copy_held, problem.observation * copy_held.keep, cfg)
                for rounds in ROUNDS:
                    truth[scale, rounds] = hole_mse01(full.images(rounds - 1), clean, mask)
                    proxy[scale, rounds] = hole_mse01(held.images(rounds - 1), clean, copy)
            for i, kind in enumerate(kinds):
                psnr = {s: psnr_from_mse(float(truth[s][i])) for s in schedules}
                score = {s: psnr_from_mse(float(proxy[s][i])) for s in schedules}
                default = (1.0, base.rounds)
                pick = max(score, key=score.get)
                pick = pick if score[pick] > score[default] + args.margin else default
                rows.setdefault((kind, shape), []).append(
                    {"schedules": psnr, "default": psnr[default], "oracle": max(psnr.values()), "copy": psnr[pick]})
            print(f"{shape} seed {seed} done", file=sys.stderr, flush=True)
    print("| images | mask | default | best single schedule | oracle | hole-shaped copy's choice |")
    print("|---|---|---:|---:|---:|---:|")
    for (kind, shape), cells in rows.items():
        means = {s: float(np.mean([c["schedules"][s] for c in cells])) for s in schedules}
        best = max(means, key=means.get)
        print(f"| {kind} | {shape} | {np.mean([c['default'] for c in cells]):.2f} | "
              f"{means[best]:.2f} (x{best[0]:g}, {best[1]} rounds) | {np.mean([c['oracle'] for c in cells]):.2f} | "
              f"{np.mean([c['copy'] for c in cells]):.2f} |")


if __name__ == "__main__":
    main()
