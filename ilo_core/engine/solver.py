"""Intermediate Layer Optimization (Daras et al., ICML 2021, Algorithm 1), in rounds.

    round 0          CSGM: optimize the latent variables z so that A(G(z)) matches y
    round r >= 1     split the generator at s = start_split + r:  G = G_after_s o G_before_s
                     h <- G_before_s(z)                         (line 2 / 6)
                     optimize h, and the latents / noises that G_after_s reads, with
                     projected Adam inside l1 balls around their starting values (line 4)
                     optionally project h back to the range of G_before_s (line 5)
    answer           the best iterate by measurement MSE (line 7), per observation; how a
                     solve's iterates become its answer otherwise (starts averaged, rounds
                     averaged, fill detail, best of several runs) is `ilo_core.engine.estimate`,
                     applied by `ilo_core.engine.methods.Solve`: this solver never reads it

The feasible set of a round is `ilo_core.engine.constraints`: the spheres, the l1 balls, and on
request a painted hole's coarse cells kept (`config.hole_block`) and ReLU-following state kept
>= 0 (`config.relu_range`, generators with `nonnegative_state`).

`ILOSolver.run()` is a Python generator of `Progress` events: close it to stop. The
best iterate so far stays in `solver.best` (one `Reconstruction` per batch item), also
after a stop or a NaN. Images are [B, 3, R, R] in [-1, 1] throughout.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor

from ilo_core.engine.adam import Adam
from ilo_core.engine.config import SolverConfig
from ilo_core.engine.constraints import hole_cells, keep_cells, project_l1_ball, project_sphere, relu_range
from ilo_core.engine.losses import geodesic_loss
from ilo_core.engine.reconstruction import Reconstruction
from ilo_core.generators.base import SplitGenerator, State, Variables
from ilo_core.perceptual.distance import PerceptualDistance
from ilo_core.physics.metrics import measurement_mse
from ilo_core.physics.operators import Inpainting, Operator, as_operator


@dataclass
class Progress:
    """One optimization step (or a round boundary) of a solve."""

    restart: int
    round_index: int
    split: int
    step: int                      # step within the round, 0-based
    round_steps: int
    done: int                      # steps finished over the whole solve
    total: int
    losses: dict[str, float]       # batch means: total, mse, lpips, geodesic, measurement_mse
    best_measurement_mse: float    # batch mean of the best iterates' measurement MSE
    image: Tensor | None = None    # current generation [B, 3, R, R] in [-1, 1] (CPU), every few steps
    message: str | None = None     # e.g. a NaN report
    elapsed: float = 0.0
    phase: str | None = None       # what part of a multi-part solve this is (e.g. ilo-auto's candidates)


def lr_schedule(base: float, step: int, steps: int) -> float:
    """Linear ramp-up over the first 5 %, cosine ramp-down over the last 75 % (never 0)."""
    t = (step + 1) / (steps + 1)
    ramp_down = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1 - t) / 0.75))
    return base * min(1.0, t / 0.05) * ramp_down


def _clone(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in tensors.items()}


def _item(tensors: dict[str, Tensor], b: int) -> dict[str, Tensor]:
    return {k: v[b:b + 1].detach().cpu().clone() for k, v in tensors.items()}


@dataclass
class RoundTensors:
    """The leaf tensors one round optimizes, the two kinds apart: `state`, the intermediate
    state at the split (by state name, e.g. "features"), and `variables`, the latents and
    noise maps that the later stages read (by variable name)."""

    state: dict[str, Tensor]
    variables: dict[str, Tensor]

    def leaves(self) -> list[Tensor]:
        return [*self.state.values(), *self.variables.values()]

    def detached(self) -> "RoundTensors":
        return RoundTensors(_clone(self.state), _clone(self.variables))


def _norm_dims(t: Tensor) -> tuple[int, ...]:
    """Dimensions of one 'row' for the spherical projection: the last dim of latents
    [B, n, d] / [B, d]; the whole map of noises [B, 1, r, r]."""
    return (-1,) if t.ndim <= 3 else tuple(range(1, t.ndim))


class ILOSolver:
    """Solve min ||A(G(z)) - y|| over the extended range of a frozen split generator."""

    def __init__(self, generator: SplitGenerator, operator: Operator | object, observation: Tensor,
                 config: SolverConfig | None = None, radius_scales: Tensor | None = None, restart: int = 0,
                 noise_rng: torch.Generator | None = None) -> None:
        """operator: an `Operator`, or any object with a differentiable `.A` (see `as_operator`);
        radius_scales: [B] factors on every l1 radius, one per batch item (candidate settings
        solved as one batch, `ilo_core.engine.auto`); None = 1. `restart` k seeds the start with
        seed + 1_000_003 k, and `noise_rng` (SNA's draws) carries on from an earlier run's
        (`Estimate.best_of`); by default it is seeded from the config's seed."""
        self.generator = generator
        self.operator = operator = as_operator(operator)
        self.A = operator.A
        self.config = (config or SolverConfig()).validate(generator.num_layers)
        self.y = observation.to(generator.device)
        self.batch = self.y.shape[0]
        cfg = self.config
        self.lpips: PerceptualDistance | None = None
        self._lpips_target: list[Tensor] | None = None
        if cfg.lpips_weight > 0:
            if not operator.has_image_view:
                raise ValueError(f"LPIPS needs an image view of the measurements, which "
                                 f"{type(operator).__name__} does not have: set lpips_weight to 0")
            size = None if cfg.lpips_size is None else min(cfg.lpips_size, max(generator.resolution, 64))
            self.lpips = PerceptualDistance(cfg.lpips_net, size, generator.device)
            if operator.perceptual_view_is_fixed:  # the target's features, once
                probe = torch.zeros(self.batch, 3, generator.resolution, generator.resolution, device=generator.device)
                with torch.no_grad():
                    self._lpips_target = self.lpips.features(operator.perceptual_view(self.y, probe))
        self.sna = operator.noise_model if cfg.sna else None
        if cfg.sna and self.sna is None:
            raise ValueError("stochastic noise addition needs an operator with a known noise model (denoising)")
        # SNA's draws, seeded per solve (never the global generator); a next run of `Estimate.best_of`
        # carries on from them
        self.noise_rng = noise_rng if noise_rng is not None else \
            torch.Generator(device=generator.device).manual_seed(self.config.seed + 77_777)
        self.restart = restart
        if radius_scales is not None:
            radius_scales = torch.as_tensor(radius_scales, dtype=torch.float32).to(generator.device).reshape(-1)
            if radius_scales.numel() != self.batch or not bool((radius_scales >= 0).all()):
                raise ValueError(f"radius_scales needs {self.batch} non-negative factors, one per batch item")
        self.radius_scales = radius_scales
        self._missing: Tensor | None = None  # [1, 1, R, R] float, 1 = missing, for hole_block
        if self.config.hole_block > 0:
            if not isinstance(operator, Inpainting):
                raise ValueError("hole_block keeps a painted hole's state in range: it needs an inpainting task")
            self._missing = (~operator.keep.to(generator.device)).float()
        if self.config.relu_range and not generator.nonnegative_state:
            raise ValueError(f"relu_range keeps state maps that follow a ReLU >= 0; {generator.kind}'s do not: "
                             "set relu_range to False")
        self.best: list[Reconstruction | None] = [None] * self.batch
        # best_after_round[r]: the best iterates over rounds 0..r, per item (what a shorter schedule returns)
        self.best_after_round: list[list[Reconstruction | None]] = []
        self.nan_detected = False  # a non-finite loss stopped the last run
        self.finished = False      # the last run went through all its steps

    @property
    def stopped_early(self) -> bool:
        """Whether the last run was closed (stopped) before its end, not by a NaN."""
        return not self.finished and not self.nan_detected

    # --- the objective -------------------------------------------------------------
    def objective(self, split: int, state: State, variables: Variables) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """Loss per item [B], its terms [B] each, and the generated image [B, 3, R, R]."""
        cfg = self.config
        x = self.generator.render_from(split, state, variables)
        x_loss = x + self.sna.sample(x, self.noise_rng) if self.sna is not None else x
        ax = self.A(x_loss)
        mse = measurement_mse(ax, self.y)
        terms = {"mse": mse}
        total = cfg.mse_weight * mse
        if self.lpips is not None:
            view = self.operator.perceptual_view
            if self._lpips_target is not None:
                lp = self.lpips.distance_to(view(ax, x_loss), self._lpips_target)
            else:
                lp = self.lpips(view(ax, x_loss), view(self.y, x))
            terms["lpips"] = lp
            total = total + cfg.lpips_weight * lp
        rows = self.generator.latent_rows(split)
        if cfg.geodesic_weight > 0 and rows is not None and "latent" in variables:
            geo = geodesic_loss(variables["latent"][:, rows])
            terms["geodesic"] = geo
            total = total + cfg.geodesic_weight * geo
        with torch.no_grad():
            terms["measurement_mse"] = mse.detach() if self.sna is None else measurement_mse(self.A(x), self.y)
        return total, terms, x

    # --- projections ---------------------------------------------------------------
    def project(self, round_index: int, params: RoundTensors, start: RoundTensors,
                norms: dict[str, Tensor], free: dict[str, Tensor] | None = None) -> None:
        """In place: spherical projection of latents/noises (to their starting norms `norms`),
        then the l1 balls around their values at the start of the round (line 4's PGD), then
        the state cells that may not move (`free`, from `hole_cells`) back to their start,
        then (`relu_range`) the state's negative entries to 0. The round's start is >= 0 there,
        so the last two only move entries towards it: the l1 ball still holds."""
        cfg = self.config
        with torch.no_grad():
            for name, p in params.variables.items():
                if cfg.spherical_projection:
                    p.copy_(project_sphere(p, norms[name], _norm_dims(p)))
                self._project_l1(p, start.variables[name], cfg.radius(self.generator.variable_group(name), round_index))
            for name, p in params.state.items():
                self._project_l1(p, start.state[name], cfg.radius("state", round_index))
                if free is not None and name in free:
                    keep_cells(p, start.state[name], free[name])
                if cfg.relu_range:
                    relu_range(p)

    def _project_l1(self, p: Tensor, start: Tensor, radius: float) -> None:
        if math.isfinite(radius):
            scaled = radius if self.radius_scales is None else radius * self.radius_scales.to(p.dtype)
            p.copy_(start + project_l1_ball(p - start, scaled))

    # --- Algorithm 1 ---------------------------------------------------------------
    def run(self) -> Iterator[Progress]:
        """Yield a `Progress` per step; the best iterate accumulates in `self.best`, and the
        start of every round is kept (`rerun_from` restarts there)."""
        cfg, gen = self.config, self.generator
        self._done, self._t0 = 0, time.perf_counter()
        self.nan_detected, self.finished = False, False
        self.best_after_round = []
        self._round_starts: dict[int, dict] = {}
        rng = torch.Generator(device=gen.device).manual_seed(cfg.seed + 1_000_003 * self.restart)
        variables = gen.sample_variables(self.batch, rng)  # line 1 starts from a random z
        state: State = gen.state_at(cfg.start_split, variables) if cfg.start_split else {}
        yield from self._rounds(self.restart, 0, state, variables)
        self.finished = not self.nan_detected

    def rerun_from(self, round_index: int, config: SolverConfig) -> Iterator[Progress]:
        """Re-run rounds `round_index`... with `config` from the kept start of that round.

        `config` may differ from the finished run's only in what rounds >= round_index use
        (their steps, radii and learning rates; rounds may be added or dropped after it).
        With unchanged settings the result is bit-identical to the full run; the rounds
        before `round_index` are not re-run and their results stay as they were. A finished
        run also keeps where its next round would start, so rounds can be added after it.
        """
        config = config.validate(self.generator.num_layers)
        kept = getattr(self, "_round_starts", {})
        if round_index not in kept:
            raise ValueError(f"round {round_index} was not reached by a finished run: run it first")
        if not config.same_before(self.config, round_index):
            raise ValueError(f"the new settings change rounds before {round_index} (or settings of every round): "
                             f"run the whole solve again")
        snapshot = kept[round_index]
        self._round_starts = {r: v for r, v in kept.items() if r <= round_index}
        self.config = config
        self.best = list(snapshot["best"])
        self.best_after_round = self.best_after_round[:round_index]
        self.nan_detected, self.finished = False, False
        self.noise_rng.set_state(snapshot["noise_rng"])
        self._done, self._t0 = snapshot["done"], time.perf_counter()
        yield from self._rounds(0, round_index, _clone(snapshot["state"]), _clone(snapshot["variables"]))
        self.finished = not self.nan_detected

    def round_start(self, round_index: int) -> dict | None:
        """The kept start of a round of the last run ({"state", "variables", ...}), or None."""
        return getattr(self, "_round_starts", {}).get(round_index)

    def start_at(self, round_index: int, state: State, variables: Variables) -> Iterator[Progress]:
        """Run rounds `round_index`... from a given start of that round (the state at split
        `start_split + round_index - 1` and the variables, batch-first, e.g. another solve's
        kept round start tiled over candidate settings)."""
        self._done, self._t0 = 0, time.perf_counter()
        self.nan_detected, self.finished = False, False
        self.best_after_round, self._round_starts = [], {}
        yield from self._rounds(0, round_index, _clone(state), _clone(variables))
        self.finished = not self.nan_detected

    def _rounds(self, restart: int, first: int, state: State, variables: Variables) -> Iterator[Progress]:
        """Rounds `first`... of one restart, from the state and variables at the start of round `first`."""
        cfg, gen = self.config, self.generator
        total = sum(cfg.steps)
        for r in range(first, cfg.rounds):
            steps = cfg.steps[r]
            split = cfg.start_split + r
            self._round_starts[r] = self._snapshot(state, variables)  # the start of this round, for rerun_from
            if r > 0:  # lines 2 / 6: h <- G_before(z), one more layer each round
                with torch.no_grad():
                    state = gen.advance(split - 1, state, variables)
            params = self._round_parameters(split, r, state, variables)
            start = params.detached()
            norms = {k: torch.linalg.vector_norm(v, dim=_norm_dims(v), keepdim=True) for k, v in start.variables.items()}
            free = None if self._missing is None else hole_cells(self._missing, params.state, cfg.hole_block)
            optimizer = Adam(params.leaves())
            for step in range(steps):
                cur_state, cur_vars = {**state, **params.state}, {**variables, **params.variables}
                loss, terms, x = self.objective(split, cur_state, cur_vars)
                finite = torch.isfinite(loss)
                self._keep_best(split, r, step, cur_state, cur_vars, x, terms["measurement_mse"], finite)
                self._done += 1
                losses = {"total": float(loss.detach().mean())} | {k: float(v.detach().mean()) for k, v in terms.items()}
                if not bool(finite.all()):
                    self.nan_detected = True
                    kept = ("the best finite iterate is kept" if any(b is not None for b in self.best)
                            else "no finite iterate was reached, so there is no result")
                    yield self._event(restart, r, split, step, steps, self._done, total, losses, x, self._t0,
                                      message=f"non-finite loss at round {r}, step {step}: stopped; {kept}")
                    return
                loss.sum().backward()
                optimizer.step(lr_schedule(cfg.lr_at(r), step, steps))
                self.project(r, params, start, norms, free)
                preview = step % cfg.preview_every == 0 or step == steps - 1
                yield self._event(restart, r, split, step, steps, self._done, total, losses,
                                  x if preview else None, self._t0)
            self._record_round(r)
            # the round's variables carry on
            state = {**state, **{k: v.detach() for k, v in params.state.items()}}
            variables.update({k: v.detach() for k, v in params.variables.items()})
            if cfg.range_projection_steps and split > 0 and r < cfg.rounds - 1:
                variables, state = self._project_to_range(split, r, state, variables)
        if not cfg.range_projection_steps and not self.nan_detected:
            # where a longer schedule's next round would start: rerun_from(cfg.rounds, longer) adds rounds
            self._round_starts[cfg.rounds] = self._snapshot(state, variables)

    def _snapshot(self, state: State, variables: Variables) -> dict:
        """What `rerun_from` restarts a round from: the state and variables at its start, the
        best iterates so far, SNA's generator state and the steps done."""
        return {"state": _clone(state), "variables": _clone(variables), "best": list(self.best),
                "noise_rng": self.noise_rng.get_state(), "done": self._done}

    def _record_round(self, r: int) -> None:
        """best_after_round[r] = the best iterates over rounds 0..r."""
        while len(self.best_after_round) < r:  # rounds this solver did not run (see start_at)
            self.best_after_round.append([None] * self.batch)
        self.best_after_round[r:] = [list(self.best)]

    def _round_parameters(self, split: int, r: int, state: State, variables: Variables) -> RoundTensors:
        """Leaf tensors optimized this round: the state at the split and the active variables."""
        def leaf(t: Tensor) -> Tensor:
            return t.detach().clone().requires_grad_(True)
        return RoundTensors({k: leaf(state[k]) for k in self.generator.optimizable_state(split)},
                            {k: leaf(variables[k]) for k in self.generator.active_variables(split, r)})

    def _project_to_range(self, split: int, r: int, state: State, variables: Variables) -> tuple[Variables, State]:
        """Algorithm 1 line 5: z <- argmin ||G_before(z) - h~|| from the current z; h <- G_before(z)."""
        gen, target = self.generator, state["features"].detach()
        names = [n for n in variables if gen.variable_group(n) in ("latents", "noises")]
        params = {n: variables[n].detach().clone().requires_grad_(True) for n in names}
        optimizer = Adam(list(params.values()))
        steps = self.config.range_projection_steps
        for step in range(steps):
            h = gen.state_at(split, {**variables, **params})["features"]
            loss = (h - target).square().mean()
            loss.backward()
            optimizer.step(lr_schedule(self.config.lr_at(r), step, steps))
        variables = {**variables, **{k: v.detach() for k, v in params.items()}}
        with torch.no_grad():
            return variables, gen.state_at(split, variables)

    def _keep_best(self, split: int, r: int, step: int, state: State, variables: Variables, x: Tensor,
                   meas: Tensor, finite: Tensor) -> None:
        for b in range(self.batch):
            value = float(meas[b])
            if not bool(finite[b]) or not math.isfinite(value):
                continue
            best = self.best[b]
            if best is None or value < best.measurement_mse:
                self.best[b] = Reconstruction(
                    split=split, state=_item(state, b), variables=_item(variables, b),
                    image=x[b:b + 1].detach().cpu().clone(), measurement_mse=value, round_index=r,
                    step=step, generator_kind=self.generator.kind, resolution=self.generator.resolution,
                    generator_id=self.generator.identity,
                    config=self.config.to_dict())

    def _event(self, restart: int, r: int, split: int, step: int, steps: int, done: int, total: int,
               losses: dict[str, float], x: Tensor | None, t0: float, message: str | None = None) -> Progress:
        bests = [b.measurement_mse for b in self.best if b is not None]
        return Progress(restart=restart, round_index=r, split=split, step=step, round_steps=steps, done=done,
                        total=total, losses=losses, best_measurement_mse=sum(bests) / len(bests) if bests else math.nan,
                        image=None if x is None else x.detach().cpu(), message=message,
                        elapsed=time.perf_counter() - t0)

    # --- results ---------------------------------------------------------------------
    def best_image(self) -> Tensor:
        """The best iterates stacked: [B, 3, R, R] in [-1, 1]. Raises if there is none."""
        if any(b is None for b in self.best):
            raise RuntimeError("no finite iterate was reached: nothing to return")
        return torch.cat([b.image for b in self.best])  # type: ignore[union-attr]
