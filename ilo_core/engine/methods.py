"""What a method name runs: the one entry point of the CLI, the page and the evaluation.

`Solve(generator, operator, observation, config)` runs ILO or a CSGM baseline (`ILOSolver`)
or ilo-auto (`AutoSolve`, which picks its radii and rounds), each from `config.mean_of`
random starts per image solved as one batch. With K = mean_of > 1 the answer is the mean
of the K starts' best images: where the observations pin the image down the starts agree
and the mean is any of them; where they do not (a painted hole) each start guesses
differently and their mean is the lower-error estimate (the minimum-MSE guess averages
over the plausible fills; one start is one draw). The starts' per-pixel standard
deviation is the spread (`spread`), at no extra cost. With `config.mean_rounds` = 2 each
start also adds to the mean its best iterate of the round before its last (no extra cost:
that round ran anyway). With `config.fill_detail` > 0 on inpainting, the mean gets one
start's fine detail back inside the hole (`ilo_core.engine.detail`).
Images are [B, 3, R, R] in [-1, 1].
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

import torch
from torch import Tensor

from ilo_core.engine.auto import AutoChoice, AutoSolve
from ilo_core.engine.config import SolverConfig
from ilo_core.engine.detail import hole_detail, with_detail
from ilo_core.generators.base import SplitGenerator, State
from ilo_core.engine.losses import measurement_mse
from ilo_core.physics.operators import Inpainting, Operator, as_operator
from ilo_core.engine.reconstruction import Reconstruction
from ilo_core.engine.solver import ILOSolver, Progress, rounds_before, with_earlier_rounds


class Solve:
    """One solve of a batch of B observations by `config.method`, as the mean of
    `config.mean_of` starts per image. `run()` yields `Progress` events (their images are
    the current means, [B, 3, R, R]); close it to stop. `best` holds one `Reconstruction`
    per image (None until a finite iterate), also after a stop or a NaN."""

    def __init__(self, generator: SplitGenerator, operator: Operator | object, observation: Tensor,
                 config: SolverConfig) -> None:
        self.generator = generator
        self.operator = as_operator(operator)
        self.config = config.validate(generator.num_layers)
        self.starts = self.config.mean_of
        self.items = observation.shape[0]
        self.y = observation.to(generator.device)
        self.missing: Tensor | None = None  # the hole that fill detail goes into, [1, 1, R, R] bool
        if self.config.fill_detail > 0:
            if not isinstance(self.operator, Inpainting):
                raise ValueError("fill detail goes into a hole: it needs an inpainting task")
            if self.starts > 1:  # one start is sharp already: nothing to put back
                self.missing = ~self.operator.keep.to(generator.device)
        # row b * K + k is start k of image b
        rows = self.y.repeat_interleave(self.starts, 0) if self.starts > 1 else self.y
        inner = replace(self.config, mean_of=1)
        self.auto: AutoSolve | None = None
        if self.config.method == "ilo-auto":
            self.auto = AutoSolve(generator, self.operator, rows, inner, seed=inner.seed, starts=self.starts)
            self.solver = self.auto.solver
        else:
            self.solver = ILOSolver(generator, self.operator, rows, inner)

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
        events = self.auto.run() if self.auto is not None else self.solver.run()
        yield from self._means(events)

    def rerun_from(self, round_index: int, config: SolverConfig) -> Iterator[Progress]:
        """`ILOSolver.rerun_from` for every start (ILO and CSGM; same `mean_of`)."""
        if self.auto is not None:
            raise ValueError("an ilo-auto solve cannot be re-run from a round: run it again")
        config = config.validate(self.generator.num_layers)
        if config.mean_of != self.starts:
            raise ValueError(f"this solve averages {self.starts} starts; the new settings ask for "
                             f"{config.mean_of}: run it again")
        events = self.solver.rerun_from(round_index, replace(config, mean_of=1))
        self.config = config
        yield from self._means(events)

    def round_start(self, round_index: int) -> dict | None:
        return self.solver.round_start(round_index)

    def _means(self, events: Iterator[Progress]) -> Iterator[Progress]:
        try:
            for event in events:
                if event.image is not None and (self.starts > 1 or self.config.mean_rounds > 1):
                    event = replace(event, image=self._mean(event.image, event.round_index))
                yield event
        finally:
            events.close()

    def _grouped(self, rows: Tensor) -> Tensor:
        """[B * K, ...] -> [B, K, ...]: each image's K starts."""
        return rows.view(self.items, self.starts, *rows.shape[1:])

    def _mean(self, rows: Tensor, round_index: int) -> Tensor:
        """The current iterates [B * K, 3, R, R] of round `round_index` -> [B, 3, R, R], the mean
        over each image's K starts, with their best iterates of the `mean_rounds` - 1 rounds
        before (what a stop now would answer), and its fill detail."""
        groups = self._grouped(rows)
        history = self.solver.best_after_round
        for r in rounds_before(round_index, self.config.mean_rounds, len(history)):
            if all(b is not None for b in history[r]):
                earlier = torch.cat([b.image for b in history[r]]).to(rows.device)  # type: ignore[union-attr]
                groups = torch.cat([groups, self._grouped(earlier)], 1)
        if self.missing is None:
            return groups.mean(1)
        missing = self.missing.to(rows.device)
        return torch.cat([with_detail(g, missing, self.config.fill_detail) for g in groups])

    # --- results -----------------------------------------------------------------------
    @property
    def best(self) -> list[Reconstruction | None]:
        """Per image: its starts' best iterates as one `Reconstruction` whose image is their mean."""
        return self._per_image(self.solver.best)

    def _per_image(self, rows: list[Reconstruction | None]) -> list[Reconstruction | None]:
        """The solver's rows (K per image) -> per image, `_combine`d with, for `config.mean_rounds`
        > 1, each row's best iterates of the rounds before its own (`with_earlier_rounds`; one
        start and one round: the row itself)."""
        if self.starts == 1 and self.config.mean_rounds == 1:
            return list(rows)
        groups = with_earlier_rounds(rows, self.solver.best_after_round, self.config.mean_rounds)
        k = self.starts
        # image b: its K starts' best iterates first, then their earlier rounds' (the order of the rows)
        return [self._combine(b, [g[0] if g else None for g in groups[b * k:(b + 1) * k]]
                              + [r for g in groups[b * k:(b + 1) * k] for r in g[1:]])
                for b in range(self.items)]

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
        solver's best iterates up to round r, `ILOSolver.best_after_round`; one restart)."""
        best = self.best if after_round is None else self._per_image(self.solver.best_after_round[after_round])
        res = self.generator.resolution
        nan = torch.full((1, 3, res, res), float("nan"))
        return torch.cat([nan if b is None else b.image for b in best]).to(self.generator.device)

    def spread(self) -> Tensor | None:
        """The per-pixel standard deviation of each image's starts, [B, R, R] in [0, 1] pixel
        units (the mean over the colour channels); None with one start or a missing iterate."""
        rows = self.solver.best
        if self.starts < 2 or any(r is None for r in rows):
            return None
        images = torch.cat([r.image for r in rows]).clamp(-1, 1) / 2  # type: ignore[union-attr]
        return self._grouped(images).std(dim=1, unbiased=False).mean(dim=1)

    def _combine(self, b: int, rows: list[Reconstruction | None]) -> Reconstruction | None:
        """Image b's iterates (its K starts' best, then their earlier rounds' with `mean_rounds`)
        -> one Reconstruction: the iterates advanced to the latest split among them (so one split
        re-renders them all), the image their mean."""
        found = [r for r in rows if r is not None]
        if not found:
            return None
        gen, dev = self.generator, self.generator.device
        last = max(found, key=lambda r: (r.split, r.round_index, r.step))
        states: list[State] = []
        with torch.no_grad():
            for r in found:
                state = {k: v.to(dev) for k, v in r.state.items()}
                variables = {k: v.to(dev) for k, v in r.variables.items()}
                for split in range(r.split, last.split):
                    state = gen.advance(split, state, variables)
                states.append({k: v.cpu() for k, v in state.items()})
            rows = torch.cat([r.image for r in found])
            image, detail = rows.mean(0, keepdim=True), None
            if self.missing is not None:
                detail = hole_detail(rows, self.missing.to(rows.device), self.config.fill_detail)
                image = image + detail
            meas = float(measurement_mse(self.operator.A(image.to(dev)), self.y[b:b + 1])[0])
        return Reconstruction(
            split=last.split, state={k: torch.cat([s[k] for s in states]) for k in states[0]},
            variables={k: torch.cat([r.variables[k] for r in found]) for k in found[0].variables},
            image=image, measurement_mse=meas, round_index=last.round_index, step=last.step,
            generator_kind=gen.kind, resolution=gen.resolution, generator_id=gen.identity,
            config={**last.config, "mean_of": self.starts, "method": self.config.method,
                    "mean_rounds": self.config.mean_rounds, "fill_detail": self.config.fill_detail}, detail=detail)


def solve(generator: SplitGenerator, operator: Operator | object, observation: Tensor,
          config: SolverConfig) -> Solve:
    """Run a whole solve; returns the finished `Solve`."""
    job = Solve(generator, operator, observation, config)
    for _ in job.run():
        pass
    return job
