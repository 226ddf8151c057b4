"""What a method name runs: the one entry point of the CLI, the page and the evaluation.

`Solve(generator, operator, observation, config)` runs ILO or a CSGM baseline (`ILOSolver`)
or ilo-auto (`AutoSolve`, which picks its radii and rounds), and makes their iterates the
answer by the config's `Estimate` (`ilo_core.engine.estimate`): the mean of `starts` random
starts per image solved as one batch (their rounds averaged, fill detail in a hole), or the
best of `best_of` runs one after the other. Images are [B, 3, R, R] in [-1, 1].
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Iterator

import torch
from torch import Tensor

from ilo_core.engine.auto import AutoChoice, AutoSolve
from ilo_core.engine.config import SolverConfig
from ilo_core.engine.estimate import Estimator, best_of, measurement_of
from ilo_core.engine.reconstruction import Reconstruction
from ilo_core.engine.solver import ILOSolver, Progress
from ilo_core.generators.base import SplitGenerator
from ilo_core.physics.operators import Inpainting, Operator, as_operator


class Solve:
    """One solve of a batch of B observations by `config.method`, answered by `config.estimate`.
    `run()` yields `Progress` events (their images are the current answers, [B, 3, R, R]); close
    it to stop. `best` holds one `Reconstruction` per image (None until a finite iterate), also
    after a stop or a NaN."""

    def __init__(self, generator: SplitGenerator, operator: Operator | object, observation: Tensor,
                 config: SolverConfig, start: dict | None = None) -> None:
        """`start`: {"state", "variables"} batch-first (B * starts rows) at the config's
        `start_split`: the solve runs its rounds from there instead of from random variables (a
        clip's warm-started frame, `ilo_core.engine.warm`); ILO and CSGM only."""
        self.generator = generator
        self.start = start
        self.operator = as_operator(operator)
        self.config = config.validate(generator.num_layers)
        estimate = self.config.estimate
        self.starts = estimate.starts
        self.items = observation.shape[0]
        self.y = observation.to(generator.device)
        # the hole that fill detail goes into, [1, 1, R, R] bool (None: no hole)
        self.hole = ~self.operator.keep.to(generator.device) if isinstance(self.operator, Inpainting) else None
        self.estimator = self._estimator(self.config)
        # row b * K + k is start k of image b
        rows = self.y.repeat_interleave(self.starts, 0) if self.starts > 1 else self.y
        self.auto: AutoSolve | None = None
        if self.config.method == "ilo-auto":
            self.auto = AutoSolve(generator, self.operator, rows, self.config, seed=self.config.seed,
                                  estimate=estimate)
            self.solver = self.auto.solver
        else:
            self.solver = ILOSolver(generator, self.operator, rows, self.config)
        if start is not None and (self.auto is not None or estimate.best_of > 1):
            raise ValueError("a warm start continues one run of ILO or CSGM: not ilo-auto or best_of")
        self.runs = [self.solver]  # best_of: one solver per run, one after the other

    # --- running -----------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        """Progress events of the whole solve (ilo-auto's shrink once it has chosen)."""
        return self.auto.total_steps if self.auto is not None else self.config.total_steps

    @property
    def work_steps(self) -> int:
        """The work in steps of one start of one image (ilo-auto: its candidates count too)."""
        return self.auto.work_steps if self.auto is not None else self.config.total_steps

    @property
    def nan_detected(self) -> bool:
        return self.solver.nan_detected

    def run(self) -> Iterator[Progress]:
        """The solve's progress events (run it once; `rerun_from` goes on from a round)."""
        if self.auto is not None:
            yield from self._answers(self.auto.run())
            return
        if self.start is not None:
            yield from self._answers(self.solver.start_at(0, self.start["state"], self.start["variables"]))
            return
        if self.config.estimate.best_of == 1:
            yield from self._answers(self.solver.run())
            return
        started = time.perf_counter()
        for k in range(self.config.estimate.best_of):  # each run carries on SNA's draws from the one before
            if k > 0:
                if self.solver.nan_detected:
                    return
                self.solver = ILOSolver(self.generator, self.operator, self.y, self.config, restart=k,
                                        noise_rng=self.solver.noise_rng)
                self.runs.append(self.solver)
            for event in self._answers(self.solver.run()):
                yield replace(event, done=sum(self.config.steps) * k + event.done, total=self.config.total_steps,
                              elapsed=time.perf_counter() - started, best_measurement_mse=self._best_mse())

    def rerun_from(self, round_index: int, config: SolverConfig) -> Iterator[Progress]:
        """`ILOSolver.rerun_from` for every start (ILO and CSGM; the same estimate)."""
        if self.auto is not None:
            raise ValueError("an ilo-auto solve cannot be re-run from a round: run it again")
        config = config.validate(self.generator.num_layers)
        if config.estimate.starts != self.starts or len(self.runs) > 1 or config.estimate.best_of > 1:
            raise ValueError(f"this solve's answer is made of {self.starts} start(s) and {len(self.runs)} run(s); "
                             f"the new settings ask for another: run it again")
        estimator = self._estimator(config)
        events = self.solver.rerun_from(round_index, config)
        self.config, self.estimator = config, estimator
        yield from self._answers(events)

    def _estimator(self, config: SolverConfig) -> Estimator:
        if config.estimate.fill_detail > 0 and self.hole is None:
            raise ValueError("fill detail goes into a hole: it needs an inpainting task")
        return Estimator(config.estimate, self.items, self.hole)

    def round_start(self, round_index: int) -> dict | None:
        return self.solver.round_start(round_index)

    def final_variables(self, round_index: int | None = None) -> dict | None:
        """Every start's row at the start of round `round_index` (default: where the last round
        ended): {"state" at the split before that round, "variables"}, what the next frame of
        a clip starts from; None after a stop or a NaN."""
        if not self.solver.finished:
            return None
        return self.solver.round_start(self.config.rounds if round_index is None else round_index)

    def _answers(self, events: Iterator[Progress]) -> Iterator[Progress]:
        """The solver's events with their images made the current answers."""
        try:
            for event in events:
                if event.image is not None and self.config.estimate.averages:
                    event = replace(event, image=self.estimator.live(event.image, event.round_index,
                                                                     self.solver.best_after_round))
                yield event
        finally:
            events.close()

    def _best_mse(self) -> float:
        bests = [b.measurement_mse for b in self.best if b is not None]
        return sum(bests) / len(bests) if bests else float("nan")

    # --- results -----------------------------------------------------------------------
    @property
    def best(self) -> list[Reconstruction | None]:
        """Per image: its answer as one `Reconstruction` (with several starts, their pooled iterates
        and their mean image; with `best_of`, the best run's)."""
        if len(self.runs) > 1:
            return best_of([run.best for run in self.runs])
        return self._per_image(self.solver.best, self.solver.best_after_round)

    def _per_image(self, rows: list[Reconstruction | None], history: list[list[Reconstruction | None]]
                   ) -> list[Reconstruction | None]:
        """The solver's rows (K per image) -> per image, one `Reconstruction` of the iterates its
        answer averages (one start and one round: the row itself)."""
        if not self.config.estimate.averages:
            return list(rows)
        settings = {"method": self.config.method, "estimate": self.config.estimate.to_dict()}
        return [self.estimator.reconstruction(pool, self.generator, measurement_of(self.operator, self.y[b:b + 1]),
                                              settings)
                for b, pool in enumerate(self.estimator.pooled(rows, history))]

    @property
    def choices(self) -> list[AutoChoice]:
        """ilo-auto: what it chose, per image (for all its starts); [] otherwise."""
        if self.auto is None or not self.auto.choices:
            return []
        return self.auto.choices[::self.starts]

    def describe_choice(self, b: int = 0) -> str:
        """ilo-auto's choice for image b in words ("" before it has chosen); one choice serves
        all of an image's starts (it was scored on their mean)."""
        if not self.choices:
            return ""
        text = self.choices[b].describe()
        if self.starts == 1:
            return text
        return text.replace("auto radii:", f"auto radii (the mean of {self.starts} starts):", 1)

    def images(self, after_round: int | None = None) -> Tensor:
        """The answers [B, 3, R, R] in [-1, 1]; an image without a finite iterate is NaN.
        `after_round` r: the answers of the schedule cut to rounds 0..r, from this one solve (the
        solver's best iterates up to round r, `ILOSolver.best_after_round`; one run)."""
        if after_round is None:
            best = self.best
        elif len(self.runs) > 1:
            raise ValueError("the answers cut after a round are those of one run: best_of must be 1")
        else:
            best = self._per_image(self.solver.best_after_round[after_round], self.solver.best_after_round)
        res = self.generator.resolution
        nan = torch.full((1, 3, res, res), float("nan"))
        return torch.cat([nan if b is None else b.image for b in best]).to(self.generator.device)

    def spread(self) -> Tensor | None:
        """The per-pixel standard deviation of each image's starts, [B, R, R] in [0, 1] pixel
        units (the mean over the colour channels); None with one start or a missing iterate."""
        return self.estimator.spread(self.solver.best)


def solve(generator: SplitGenerator, operator: Operator | object, observation: Tensor,
          config: SolverConfig) -> Solve:
    """Run a whole solve; returns the finished `Solve`."""
    job = Solve(generator, operator, observation, config)
    for _ in job.run():
        pass
    return job
