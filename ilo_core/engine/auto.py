"""Self-tuned ILO ("ilo-auto"): ILO that picks its own l1 radii and rounds per image.

The paper's authors call tuning the radii "toilsome"; one fixed schedule serves every hole
here otherwise. `auto_solve` chooses by held-out measurement error:

1. Hold out part of the observations (`held_out_split`): for a painted or box hole the
   observed pixels in a ring around it (the hole grown by RING_FRACTION of the image
   side), else a random HELD_OUT_FRACTION of the measurements (random pixels,
   super-resolution pixels, compressed-sensing entries, noisy pixels).
2. Round 0 (CSGM) once, on all observations: every candidate starts round 1 from it.
3. The candidates, as one batch: every radius times each of SCALES, rounds 1.. with
   CANDIDATE_STEP_FRACTION of the steps, on the observations without the held-out part.
   Each candidate's best iterate after every round is scored on the held-out part (for
   inpainting: the whole image's expected error, the observed share by the fit to the
   pixels it saw, the missing share by the held-out pixels), so
   "which round's iterate to keep" (how many rounds) is chosen too, at no extra cost. The
   lowest estimated error wins if it beats the default schedule's by EVIDENCE standard
   errors (paired, over BLOCK x BLOCK pixel blocks: neighbouring pixels' errors are not
   independent); else the default is kept (and the result is then bit-identical to plain ILO's).
   With several starts per image (`Estimate.starts`) the candidates are scored on the mean of
   the iterates the answer pools (`Estimator.pooled`; the plain mean, without fill detail),
   and one choice serves all of an image's starts. With
   fewer than MIN_HELD_OUT held-out entries per image (random pixels at 10 % or less of a
   64 px image, compressed sensing at 10 % or less, super-resolution x4 and x8 there) the
   estimates cannot tell the candidates apart: no candidates run and the answer is ILO's
   default schedule, at ILO's cost.
4. Rounds 1.. again, on all observations, with the chosen scale, from the same start; the
   answer is the best iterate up to the chosen round.

Cost (`work_steps`): round 0 + len(SCALES) x CANDIDATE_STEP_FRACTION x rounds 1.. + rounds
1.. = at most 0.25 + 3 x 0.4 x 0.75 + 0.75 = 1.9x a default 4-round solve where a batch of K
costs K times a batch of 1 (a CPU); less on a GPU. The CLI's report and the evaluation's
records give the measured seconds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ilo_core.engine.config import SolverConfig
from ilo_core.engine.estimate import Estimate, Estimator
from ilo_core.engine.solver import ILOSolver, Progress
from ilo_core.generators.base import SplitGenerator
from ilo_core.physics.operators import Inpainting, Operator, RandomInpainting, as_operator

SCALES = (0.25, 1.0, 4.0)       # candidate factors on every l1 radius
CANDIDATE_STEP_FRACTION = 0.4   # candidates run rounds >= 1 with this fraction of the steps
HELD_OUT_FRACTION = 0.15        # random measurements held out (not a painted hole)
RING_FRACTION = 1 / 16          # a hole's held-out ring: this fraction of the image side wide
EVIDENCE = 2.0                  # another schedule must beat the default's (radius x 1, every round) estimated
                                # error by this many standard errors (paired over the scored pixels)
BLOCK = 4                       # px: the standard error's blocks of correlated pixel errors (see `paired_scores`)
MIN_HELD_OUT = 300              # fewer held-out measurement entries per image: no candidates, the default schedule


@dataclass
class AutoChoice:
    """What `auto_solve` chose for one image, and every candidate's held-out error."""

    radius_scale: float
    rounds: int                      # rounds 0 .. rounds - 1; the best iterate among them is the answer
    held_out_mse: float | None       # the chosen candidate's estimated error (see `score_groups`); None: no candidates
    held_out: str                    # what was held out, in words
    candidates: list[dict]           # {"radius_scale", "rounds", "held_out_mse", "gain", "gain_se"} each

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if not self.candidates:
            return f"auto radii: the default schedule, every radius x 1, {self.rounds} rounds ({self.held_out})"
        return (f"auto radii: every radius x {self.radius_scale:g}, {self.rounds} rounds "
                f"(estimated error {self.held_out_mse:.5f}; held out: {self.held_out})")


class MaskedMeasurements(Operator):
    """`base` with some measurement entries removed: A(x) = base.A(x) where `keep`, 0 elsewhere."""

    def __init__(self, base: Operator, keep: Tensor) -> None:
        super().__init__()
        self.base = base
        self.register_buffer("keep", keep)
        self.linear, self.task = base.linear, base.task
        self.noise_model, self.has_image_view = base.noise_model, base.has_image_view

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        return self.base.A(x) * self.keep

    def perceptual_view(self, y: Tensor, current: Tensor) -> Tensor:
        """The base's view of y, its removed entries filled from the current generation."""
        return self.base.perceptual_view(torch.where(self.keep, y, self.base.A(current).detach()), current)


def held_out_split(operator: Operator, observation: Tensor, seed: int = 0) -> tuple[Operator, Tensor, str]:
    """(the operator without the held-out measurements, held-out weights shaped like the
    measurements (True = held out), a description). See the module notes."""
    rng = torch.Generator().manual_seed(seed + 424_242)
    if isinstance(operator, Inpainting) and not isinstance(operator, RandomInpainting):
        keep = operator.keep  # [1, 1, H, W], True = observed
        size = keep.shape[-1]
        width = max(2, round(size * RING_FRACTION))
        grown = F.max_pool2d((~keep).float(), 2 * width + 1, stride=1, padding=width) > 0
        ring = grown & keep
        if ring.float().mean() >= 0.01 and (keep & ~ring).any():
            return Inpainting(keep & ~ring).to(keep.device), ring.expand_as(observation), \
                f"a {width} px ring of observed pixels around the hole"
    if isinstance(operator, Inpainting):  # random pixels (or a ring too thin to score)
        keep = operator.keep
        draw = torch.rand(keep.shape, generator=rng).to(keep.device) < HELD_OUT_FRACTION
        held = keep & draw
        return Inpainting(keep & ~held).to(keep.device), held.expand_as(observation), \
            f"{HELD_OUT_FRACTION:.0%} of the observed pixels"
    entry = observation[:1]
    draw = torch.rand(entry.shape, generator=rng).to(observation.device) < HELD_OUT_FRACTION
    return MaskedMeasurements(operator, ~draw), draw.expand_as(observation), \
        f"{HELD_OUT_FRACTION:.0%} of the measurements"


def held_out_mse(operator: Operator, images: Tensor, observation: Tensor, held: Tensor) -> Tensor:
    """Mean squared measurement error over the held-out entries, per item -> [B]."""
    with torch.no_grad():
        err = (operator.A(images.to(observation.device)) - observation).square() * held
    dims = tuple(range(1, err.ndim))
    return err.sum(dims) / held.float().sum(dims).clamp_min(1)


def score_groups(operator: Operator, train_op: Operator, held: Tensor) -> list[tuple[Tensor, float]]:
    """(entries, weight) whose weighted mean squared errors estimate a candidate's error. For
    inpainting the whole image's: the observed share by the pixels the candidate was fitted
    to, the missing share by the held-out pixels (which stand for the missing ones).
    Otherwise the held-out measurements alone."""
    if not isinstance(operator, Inpainting):
        return [(held, 1.0)]
    observed = float(operator.keep.float().mean())
    return [(held, 1.0 - observed), (train_op.keep.expand_as(held), observed)]


def _block_sums(x: Tensor, block: int = BLOCK) -> Tensor:
    """An item's measurement-shaped tensor -> its sums over BLOCK x BLOCK pixel blocks (all
    channels together), flattened; a tensor that is not [C, H, W] with H, W >= 2 x block: itself."""
    if x.ndim != 3 or min(x.shape[-2:]) < 2 * block:
        return x.flatten()
    h, w = x.shape[-2:]
    summed = F.pad(x.sum(0), (0, -w % block, 0, -h % block))
    return summed.view(summed.shape[0] // block, block, summed.shape[1] // block, block).sum((1, 3)).flatten()


def paired_scores(errors: Tensor, default: Tensor, groups: list[tuple[Tensor, float]]) -> tuple[float, float, float]:
    """(estimated error, its difference to the default's, the difference's standard error)
    for one item's squared errors `errors` and the default schedule's `default` (its shape).
    Neighbouring pixels' errors are correlated, so the standard error treats each BLOCK x BLOCK
    block of pixels (all channels) as one draw (a cluster-robust variance of the mean)."""
    estimate = gain = variance = 0.0
    for mask, weight in groups:
        n = float(mask.sum())
        if n == 0:
            continue
        keep = mask.to(errors.dtype)
        d = (errors - default) * keep
        mean = float(d.sum()) / n
        estimate += weight * float((errors * keep).sum()) / n
        gain += weight * mean
        sums, counts = _block_sums(d), _block_sums(keep)
        variance += weight ** 2 * float((sums - counts * mean).square().sum()) / n ** 2
    return estimate, gain, math.sqrt(variance)


def _candidate_steps(steps: Sequence[int]) -> list[int]:
    """A schedule's steps as the candidates run it (rounds >= 1 cut to CANDIDATE_STEP_FRACTION)."""
    return [steps[0]] + [max(1, int(s * CANDIDATE_STEP_FRACTION)) for s in steps[1:]]


def work_steps(steps: Sequence[int], scales: Sequence[float] = SCALES) -> int:
    """The work of an ilo-auto solve of schedule `steps`, in steps of a plain solve of the same
    batch (on a CPU a batch of K candidates costs about K steps), if all rounds are chosen."""
    return steps[0] + len(scales) * sum(_candidate_steps(steps)[1:]) + sum(steps[1:])


def _candidate_config(config: SolverConfig) -> SolverConfig:
    return replace(config, steps=tuple(_candidate_steps(config.steps)), preview_every=10**6)


def _schedule(config: SolverConfig, rounds: int, scale: float = 1.0) -> SolverConfig:
    """`config` cut to its first `rounds` rounds, every radius times `scale`."""
    radii = {g: [None if v is None else v * scale for v in values[:rounds]] for g, values in config.radii.items()}
    lr = config.lr if isinstance(config.lr, (int, float)) else list(config.lr)[:rounds]
    return replace(config, steps=tuple(config.steps[:rounds]), radii=radii, lr=lr)


class AutoSolve:
    """`auto_solve` as a generator of `Progress` events (close it to stop); `choices` and
    `solver.best` hold the result once it is exhausted."""

    def __init__(self, generator: SplitGenerator, operator: Operator | object, observation: Tensor,
                 config: SolverConfig, seed: int = 0, scales: tuple[float, ...] = SCALES,
                 estimate: Estimate = Estimate()) -> None:
        self.generator, self.operator = generator, as_operator(operator)
        self.observation = observation.to(generator.device)
        self.config = config.validate(generator.num_layers)
        if self.config.rounds < 2 or estimate.best_of != 1:
            raise ValueError("ilo-auto needs an ILO schedule of at least 2 rounds and one run (best_of 1)")
        starts = estimate.starts
        if starts < 1 or self.observation.shape[0] % starts:
            raise ValueError(f"{self.observation.shape[0]} observation rows cannot be {starts} starts per image")
        # rows b * starts .. (b + 1) * starts - 1 are the starts of image b, whose answer is their mean:
        # the candidates are scored on that mean and image b's choice serves all its starts
        self.starts, self.estimate = starts, estimate
        self.seed, self.scales = seed, tuple(float(s) for s in scales)
        self.solver = ILOSolver(generator, self.operator, self.observation, self.config)
        self.choices: list[AutoChoice] = []
        self.train_op, self.held, self.held_text = held_out_split(self.operator, self.observation, self.seed)
        held_entries = int(self.held[0].sum())
        # too few held-out entries to tell the candidates apart (their errors' spread is noise and
        # the best of 3 x rounds candidates is chosen): ILO's default schedule, at ILO's cost
        self.too_few = held_entries < MIN_HELD_OUT
        steps = self.config.steps
        if self.too_few:
            self.total_steps = self.work_steps = self.config.total_steps
            self.held_text = (f"only {held_entries} measurements could be held out, fewer than {MIN_HELD_OUT}: "
                              "too few to choose on")
            return
        # progress events: round 0, the candidates' batched steps, rounds 1.. again (fewer if fewer are chosen)
        self.total_steps = steps[0] + sum(_candidate_steps(steps)[1:]) + sum(steps[1:])
        self.work_steps = work_steps(steps, self.scales)

    def run(self):
        cfg, batch, k = self.config, self.observation.shape[0], len(self.scales)
        done = 0
        if self.too_few:  # plain ILO (bit-identical), its answer labelled as ilo-auto's default choice
            yield from self.solver.run()
            self.choices = [AutoChoice(1.0, cfg.rounds, None, self.held_text, [])] * batch
            for best in self.solver.best:
                if best is not None:
                    best.config = replace(_schedule(cfg, cfg.rounds), method="ilo-auto").to_dict()
            return
        # 1. round 0 on all observations, up to the kept start of round 1
        first = self.solver.run()
        for event in first:
            if event.round_index >= 1:
                break
            done += 1
            yield replace(event, total=self.total_steps, done=done)
        first.close()
        if self.solver.nan_detected or self.solver.round_start(1) is None:
            return
        start = self.solver.round_start(1)
        # 2. the candidates as one batch: item c * batch + b is scale c on image b
        train_op, held, held_text = self.train_op, self.held, self.held_text
        cand_cfg = _candidate_config(cfg)
        scales = torch.tensor(self.scales).repeat_interleave(batch)
        observations = _tile(self.observation, k)
        candidates = ILOSolver(self.generator, train_op, observations, cand_cfg, radius_scales=scales)
        for event in candidates.start_at(1, {n: _tile(v, k) for n, v in start["state"].items()},
                                         {n: _tile(v, k) for n, v in start["variables"].items()}):
            done += 1
            yield replace(event, total=self.total_steps, done=done, image=None,
                          phase="trying radius scales " + ", ".join(f"x{s:g}" for s in self.scales))
        # every candidate's answer (the mean of its starts' best iterates) after every round:
        # its squared error per measurement; item c * images + i is scale c on image i
        res, s = self.generator.resolution, self.starts
        images_n = batch // s
        targets = _tile(self.observation[::s], k)
        errors: dict[int, Tensor] = {}
        # (with rounds averaged the answer also pools each start's earlier rounds, round 0 the shared one's)
        history = [list(self.solver.best_after_round[0]) * k, *candidates.best_after_round[1:]]
        nan = torch.full((1, 3, res, res), math.nan)
        scoring = Estimator(replace(self.estimate, fill_detail=0.0), k * images_n)  # the plain mean
        for r in range(1, cfg.rounds):
            if len(candidates.best_after_round) <= r:
                break  # a NaN stopped the candidates
            rows = candidates.best_after_round[r]
            answers = torch.cat([nan if any(row is None for row in rows[j * s:(j + 1) * s]) or answer is None
                                 else answer for j, answer in enumerate(scoring.answers(rows, history))]
                                ).to(observations.device)
            with torch.no_grad():
                errors[r] = (self.operator.A(answers) - targets).square()
        if len(errors) < cfg.rounds - 1:
            return
        groups = score_groups(self.operator, train_op, held)
        base = self.scales.index(1.0) if 1.0 in self.scales else 0
        self.choices = []
        for i in range(images_n):
            default = errors[cfg.rounds - 1][base * images_n + i]
            item_groups = [(mask[i * s], w) for mask, w in groups]
            table = []
            for r, err in errors.items():
                for c, scale in enumerate(self.scales):
                    estimate, gain, se = paired_scores(err[c * images_n + i], default, item_groups)
                    table.append({"radius_scale": scale, "rounds": r + 1, "held_out_mse": estimate,
                                  "gain": gain, "gain_se": se})
            self.choices.extend([choose(table, cfg.rounds, held_text)] * s)
        # 3. rounds 1.. on all observations with the chosen scales, from the same start
        rounds = max(c.rounds for c in self.choices)
        self.total_steps = done + sum(cfg.steps[1:rounds])
        self.work_steps -= sum(cfg.steps[rounds:])
        final_cfg = _schedule(cfg, rounds)
        self.solver.radius_scales = torch.tensor([c.radius_scale for c in self.choices],
                                                 device=self.generator.device)
        for event in self.solver.rerun_from(1, final_cfg):
            done += 1
            yield replace(event, total=self.total_steps, done=done)
        if self.solver.nan_detected or len(self.solver.best_after_round) < rounds:
            return
        for b, choice in enumerate(self.choices):
            best = self.solver.best_after_round[choice.rounds - 1][b]
            if best is not None:
                # the config a plain solve of the choice would have
                best.config = replace(_schedule(cfg, choice.rounds, choice.radius_scale), method="ilo-auto").to_dict()
            self.solver.best[b] = best

    def best_image(self) -> Tensor:
        return self.solver.best_image()


def choose(candidates: list[dict], rounds: int, held_out: str, evidence: float = EVIDENCE) -> AutoChoice:
    """The candidate with the lowest estimated error among those that beat the default
    schedule (radius x 1, all `rounds`) by `evidence` standard errors ("gain" + evidence x
    "gain_se" < 0); the default when none does."""
    finite = [row for row in candidates if math.isfinite(row["held_out_mse"])] or candidates
    default = [row for row in finite if row["radius_scale"] == 1.0 and row["rounds"] == rounds]
    better = [row for row in finite if row["gain"] + evidence * row["gain_se"] < 0]
    best = min(better or default or finite, key=lambda row: (row["held_out_mse"], -row["rounds"]))
    return AutoChoice(best["radius_scale"], best["rounds"], best["held_out_mse"], held_out, candidates)


def _tile(t: Tensor, k: int) -> Tensor:
    """[B, ...] -> [k * B, ...]: item c * B + b is t[b]."""
    return t.repeat(k, *[1] * (t.ndim - 1))


def auto_solve(generator: SplitGenerator, operator: Operator | object, observation: Tensor, config: SolverConfig,
               seed: int = 0) -> AutoSolve:  # one start per image
    """Run a whole self-tuned solve (see the module notes); returns the finished `AutoSolve`."""
    auto = AutoSolve(generator, operator, observation, config, seed)
    for _ in auto.run():
        pass
    return auto


__all__ = ["AutoChoice", "AutoSolve", "MaskedMeasurements", "Progress", "auto_solve", "held_out_split", "held_out_mse"]
