"""Where the reconstruction is guessing: K restarts as one batched solve, and their spread.

The same problem is solved from K random starts at once (the batch dimension; a solve whose
`Estimate.starts` = K > 1 has them already, `ilo_core.engine.methods.Solve.spread`); where the
observations pin the image down the K results agree, and where they do not (a painted
hole, unobserved detail) they differ. The per-pixel spread is the standard deviation over
the K results, averaged over the colour channels, in [0, 1] pixel units.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
from torch import Tensor

from ilo_core.engine.config import SolverConfig
from ilo_core.engine.methods import solve
from ilo_core.generators.base import SplitGenerator
from ilo_core.physics.operators import Inpainting, Operator
from ilo_core.physics.problems import Problem


SPREAD_STARTS = 4  # restarts solved for the spread where the solve itself has one start


def restart_spread(generator: SplitGenerator, problem: Problem, config: SolverConfig, restarts: int = SPREAD_STARTS,
                   seed: int | None = None) -> tuple[Tensor, Tensor]:
    """(results [K, 3, R, R] in [-1, 1], spread [R, R] in [0, 1] units) of K restarts solved as one batch.

    `problem` must have batch size 1; its operator is shared by the K items.
    """
    if restarts < 2:
        raise ValueError(f"the spread needs at least 2 restarts, got {restarts}")
    if problem.observation.shape[0] != 1:
        raise ValueError("restart_spread takes a problem of batch size 1")
    config = dataclasses.replace(config, estimate=dataclasses.replace(config.estimate, starts=restarts, best_of=1),
                                 seed=config.seed if seed is None else seed, preview_every=1_000_000,
                                 method="ilo" if config.method == "ilo-auto" else config.method)
    job = solve(generator, problem.operator, problem.observation, config)
    spread = job.spread()
    if spread is None:
        raise RuntimeError("no finite iterate was reached by every restart: there is no spread")
    return job.solver.best_image(), spread[0]


def spread_summary(spread: Tensor, operator: Operator) -> dict[str, float]:
    """The spread [R, R]'s mean ("spread_mean"), and for inpainting its means inside the hole
    and outside it ("spread_in_hole", "spread_outside"), in [0, 1] pixel units."""
    spread = spread.detach().cpu()
    summary = {"spread_mean": float(spread.mean())}
    if isinstance(operator, Inpainting):
        hole = ~operator.keep[0, 0].cpu()
        summary.update(spread_in_hole=float(spread[hole].mean()), spread_outside=float(spread[~hole].mean()))
    return summary


def spread_heatmap(spread: Tensor, size: int = 256, vmax: float | None = None) -> np.ndarray:
    """A spread map [R, R] -> size x size x 3 uint8 heat map (dark: agreed, bright yellow: guessing).

    `vmax` is the spread shown at full brightness (default: the map's 99th percentile)."""
    a = spread.detach().float().cpu().numpy()
    top = float(np.percentile(a, 99)) if vmax is None else float(vmax)
    scaled = np.clip(a / max(top, 1e-6), 0, 1)
    image = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1]
    return cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=cv2.INTER_NEAREST)
