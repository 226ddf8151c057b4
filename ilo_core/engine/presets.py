"""The default config of a generator, a task and a method: the rules that combine the
generator's declared `Tuning` (`ilo_core.generators.base`) with the task and the method.
Every number behind a rule or a tuning value has a record in docs/tuning.md.

- ILO runs `ROUNDS` rounds of `STEPS_PER_ROUND` steps (fewer on a shallower generator), its
  radii the generator's; a CSGM baseline runs round 0 only, with the same number of steps.
- LPIPS joins the MSE where the generator says it helps, except for compressed sensing (no
  image view) and random pixels with fewer than LPIPS_OBSERVED_BELOW observed; the CSGM
  baselines name their own losses.
- Painted holes and random pixels (FILL_TASKS), ILO and ilo-auto: the answer is the mean of
  the generator's `fill_starts` starts, each adding its last `fill_rounds` rounds where the
  guess dominates the error (holes; random pixels with fewer than
  MEAN_ROUNDS_OBSERVED_BELOW observed); painted holes also get `fill_detail` and keep the
  state cells of `hole_cells` px in range. The baselines keep one start.
- State maps that follow a ReLU stay >= 0 under ILO (`nonnegative_state`).
"""

from __future__ import annotations

from ilo_core.engine.config import (ILO_METHODS, LEARNING_RATE, MSE_WEIGHT, ROUNDS, SOLVER_METHODS, STEPS_PER_ROUND,
                                    SolverConfig)
from ilo_core.engine.estimate import Estimate
from ilo_core.generators.base import SplitGenerator
from ilo_core.physics.operators import TASKS

FILL_TASKS = ("inpaint", "random-inpaint")   # the tasks whose answer averages starts (with a generator's fill_starts)
MEAN_ROUNDS_OBSERVED_BELOW = 0.2  # random pixels: rounds are averaged only with fewer observed (docs/tuning.md)
LPIPS_OBSERVED_BELOW = 0.2        # random pixels: no LPIPS with fewer observed (the paper's rule)
ESTIMATE_FIELDS = {"starts", "rounds_averaged", "fill_detail", "best_of"}  # keywords of default_config for the estimate


def default_rounds(generator: SplitGenerator) -> int:
    """ILO's number of rounds on this generator: ROUNDS, or its number of layers if fewer."""
    return min(ROUNDS, generator.num_layers)


def default_steps(generator: SplitGenerator, per_round: int = STEPS_PER_ROUND) -> list[int]:
    """Steps per round of the default ILO schedule (every task's): `per_round` on each of
    `default_rounds` rounds."""
    return [per_round] * default_rounds(generator)


def default_estimate(generator: SplitGenerator, task: str, method: str = "ilo",
                     observed: float | None = None) -> Estimate:
    """How the answer is made (see the module notes): the mean of the generator's `fill_starts`
    for ILO and ilo-auto on holes and random pixels, else Algorithm 1's best iterate."""
    tuning = generator.tuning
    starts = tuning.fill_starts if task in FILL_TASKS and method in ILO_METHODS else 1
    if starts == 1:
        return Estimate()
    guessing = task == "inpaint" or (observed is not None and observed < MEAN_ROUNDS_OBSERVED_BELOW)
    return Estimate(starts=starts, rounds_averaged=tuning.fill_rounds if guessing else 1,
                    fill_detail=tuning.fill_detail if task == "inpaint" else 0.0)


def default_hole_block(generator: SplitGenerator, task: str, method: str = "ilo") -> int:
    """The generator's `hole_cells` for ILO and ilo-auto on painted holes, else 0 (off)."""
    return generator.tuning.hole_cells if task == "inpaint" and method in ILO_METHODS else 0


def default_fill_detail(generator: SplitGenerator) -> float:
    """The fill detail (px) a painted hole gets on this generator where its answer averages starts."""
    return generator.tuning.fill_detail


def default_relu_range(generator: SplitGenerator, method: str = "ilo") -> bool:
    """True for ILO and ilo-auto on a generator whose state maps follow a ReLU."""
    return bool(generator.nonnegative_state) and method in ILO_METHODS


def default_geodesic_weight(generator: SplitGenerator) -> float:
    return generator.tuning.geodesic_weight


def default_radii(generator: SplitGenerator, rounds: int | None = None) -> dict[str, list[float | None]]:
    """The generator's l1 radii per group, one per round (`rounds`: default_rounds)."""
    n = default_rounds(generator) if rounds is None else rounds
    return {g: _fit(list(v), n) for g, v in generator.tuning.radii.items()}


def default_lpips_weight(generator: SplitGenerator, task: str, observed: float | None = None) -> float:
    """The LPIPS weight of ILO for a task: 0 where it does not help (see the module notes)."""
    if not generator.tuning.lpips or task == "compressed-sensing":
        return 0.0
    if task == "random-inpaint" and (observed or 0) < LPIPS_OBSERVED_BELOW:
        return 0.0
    return 1.0


def default_config(generator: SplitGenerator, task: str, method: str = "ilo", *,
                   observed: float | None = None, steps: list[int] | None = None, **overrides) -> SolverConfig:
    """The recommended `SolverConfig` for a generator, a task name and a method.

    CSGM baselines run the same solver restricted to round 0 with the same total number of
    steps as the ILO default (or as `steps`). `overrides` set config fields; the estimate's
    (starts, rounds_averaged, fill_detail, best_of) change the default estimate.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if method not in SOLVER_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(SOLVER_METHODS)}")
    ilo_steps = list(steps) if steps is not None else default_steps(generator)
    kwargs: dict = dict(
        lr=LEARNING_RATE,
        lpips_net=generator.tuning.lpips_net,
        lpips_size=256,
        geodesic_weight=default_geodesic_weight(generator),
        mse_weight=MSE_WEIGHT,
        lpips_weight=default_lpips_weight(generator, task, observed),
        sna=task == "denoise",
    )
    if method in ILO_METHODS:
        kwargs["steps"] = tuple(ilo_steps)
        kwargs["radii"] = default_radii(generator, len(ilo_steps))
    else:
        kwargs["steps"] = (sum(ilo_steps),)
        kwargs["radii"] = {}
        if method == "csgm-mse":
            kwargs["lpips_weight"] = 0.0
        elif method == "csgm-lpips":
            kwargs["mse_weight"], kwargs["lpips_weight"] = 0.0, 1.0
        else:
            kwargs["lpips_weight"] = 1.0
        if method != "csgm-mse" and task == "compressed-sensing":
            raise ValueError("compressed sensing measurements have no image view: use csgm-mse")
    kwargs["method"] = method
    kwargs["hole_block"] = default_hole_block(generator, task, method)
    kwargs["relu_range"] = default_relu_range(generator, method)
    estimate = {k: overrides.pop(k) for k in ESTIMATE_FIELDS & set(overrides)}
    kwargs["estimate"] = Estimate(**{**default_estimate(generator, task, method, observed).to_dict(), **estimate})
    kwargs.update(overrides)
    return SolverConfig(**kwargs)


def _fit(values: list, n: int) -> list:
    """Per-round list of length n: truncated, or extended by doubling the last radius."""
    out = list(values[:n])
    while len(out) < n:
        last = out[-1]
        out.append(None if last is None else 2 * last)
    return out
