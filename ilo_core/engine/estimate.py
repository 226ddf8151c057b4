"""How a solve's iterates become its answer, and their spread: one `Estimate`, applied here.

Algorithm 1 (`ilo_core.engine.solver`) returns, per observation, its best iterate by measurement
MSE. The answer can use more of what a solve computes (deepinv's samplers and NVlabs' metrics
keep the same split between running the chain and estimating from it):

- `starts`: K random starts per image solved as one batch; the answer is the mean of their
  images. Where the observations pin the image down the starts agree and the mean is any of
  them; where they do not (a painted hole) each start guesses differently and their mean is the
  lower-error estimate (one start is one draw). Their per-pixel standard deviation is the
  spread, at no extra cost.
- `rounds_averaged`: each start also adds to the mean its best iterates after the
  `rounds_averaged` - 1 rounds before the one its best iterate came from (no extra cost: those
  rounds ran anyway).
- `fill_detail` (px, inpainting with several starts): the mean gets one start's fine detail back
  inside the hole (`with_detail`): the start nearest the mean (the medoid), its image minus its
  Gaussian blur of `fill_detail` px. This trades a little hole PSNR for a sharper fill (lower
  LPIPS): the perception-distortion trade-off (Blau and Michaeli, CVPR 2018).
- `best_of`: k starts run one after the other; the answer is the best iterate of all by
  measurement MSE (what the paper's code calls restarts). It cannot be combined with the mean.

The generator's tuning record (`ilo_core.generators.base.Tuning`) says which estimate a task
gets (`ilo_core.engine.presets`); the page, the CLI, the evaluation and ilo-auto's scoring all
apply it through `Estimator`. Images are [B, 3, R, R] in [-1, 1]; masks [1, 1, R, R] bool,
True = missing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor

from ilo_core.engine.reconstruction import Reconstruction
from ilo_core.generators.base import SplitGenerator, State
from ilo_core.physics.metrics import measurement_mse

# the estimate's fields as saved results before it had a record of its own name them (SolverConfig.from_dict)
LEGACY_NAMES = {"mean_of": "starts", "mean_rounds": "rounds_averaged", "restarts": "best_of"}


@dataclass(frozen=True)
class Estimate:
    """What the answer of a solve is made of (see the module notes); the default is Algorithm
    1's own: one start, its best iterate."""

    starts: int = 1              # random starts per image as one batch; the answer is their mean
    rounds_averaged: int = 1     # each start's best iterates of its last this-many rounds join the mean
    fill_detail: float = 0.0     # px: the medoid's detail finer than this put back in a hole (0 = plain mean)
    best_of: int = 1             # starts one after the other; the best by measurement MSE wins

    @property
    def averages(self) -> bool:
        """Whether the answer is a mean of several iterates per image."""
        return self.starts > 1 or self.rounds_averaged > 1

    def validate(self) -> "Estimate":
        """Raise ValueError with a clear message for any bad value. Returns self."""
        for name in ("starts", "rounds_averaged", "best_of"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.fill_detail, (int, float)) and math.isfinite(self.fill_detail)
                and 0 <= self.fill_detail <= 8):
            raise ValueError(f"fill_detail must be a number of pixels from 0 to 8, got {self.fill_detail!r}")
        if self.best_of > 1 and self.averages:
            raise ValueError("best_of (the best of starts run one after the other) cannot be combined with "
                             "an answer averaged over starts or rounds")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Estimate":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown estimate fields: {sorted(unknown)}")
        return cls(**d)


def rounds_before(round_index: int, rounds_averaged: int, recorded: int) -> list[int]:
    """The rounds before `round_index`, latest first, whose best iterates an answer with
    `rounds_averaged` also averages: the `rounds_averaged` - 1 before it, of the `recorded`
    rounds 0 .. recorded - 1 (`ILOSolver.best_after_round`)."""
    return [r for r in range(round_index - 1, round_index - rounds_averaged, -1) if 0 <= r < recorded]


def with_earlier_rounds(rows: list[Reconstruction | None], history: list[list[Reconstruction | None]],
                        rounds_averaged: int) -> list[list[Reconstruction]]:
    """Per row i: its best iterate `rows[i]` followed by its best iterates after each of the
    `rounds_averaged` - 1 rounds before the round that iterate came from (`history[r][i]`, the
    best over rounds 0..r: `ILOSolver.best_after_round`). Rounds not run, a None (no finite
    iterate) and a repeat (a round that did not improve on the one before) are left out; no
    iterate at all -> []."""
    groups: list[list[Reconstruction]] = []
    for i, row in enumerate(rows):
        group = [] if row is None else [row]
        for r in rounds_before(row.round_index, rounds_averaged, len(history)) if row is not None else ():
            earlier = history[r][i]
            if earlier is not None and all(earlier is not g for g in group):
                group.append(earlier)
        groups.append(group)
    return groups


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of [B, C, H, W] (reflected borders, radius 3 sigma)."""
    radius = max(1, int(3 * sigma + 0.5))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-t.square() / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1),
                 groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1),
                    groups=c)


def medoid(starts: Tensor) -> Tensor:
    """The start [1, 3, R, R] closest (in MSE) to the mean of `starts` [K, 3, R, R]."""
    mean = starts.mean(0, keepdim=True)
    return starts[int((starts - mean).square().flatten(1).mean(1).argmin())][None]


def hole_detail(starts: Tensor, missing: Tensor, sigma: float) -> Tensor:
    """What `with_detail` adds to the mean of `starts` [K, 3, R, R]: the medoid's high
    frequencies inside the hole (`missing` [1, 1, R, R] bool), zero elsewhere -> [1, 3, R, R]."""
    if sigma <= 0 or starts.shape[0] < 2:
        return torch.zeros_like(starts[:1])
    pick = medoid(starts.clamp(-1, 1))
    return (pick - gaussian_blur(pick, sigma)) * missing.to(starts.device, starts.dtype)


def with_detail(starts: Tensor, missing: Tensor, sigma: float) -> Tensor:
    """The mean of `starts` [K, 3, R, R] plus `hole_detail`: [1, 3, R, R] (not clamped)."""
    return starts.mean(0, keepdim=True) + hole_detail(starts, missing, sigma)


class Estimator:
    """An `Estimate` applied to one solve of `items` images, each solved from `estimate.starts`
    rows (row b * K + k is start k of image b). `missing` [1, 1, R, R] bool: the hole that fill
    detail goes into (None: the plain mean)."""

    def __init__(self, estimate: Estimate, items: int, missing: Tensor | None = None) -> None:
        self.estimate = estimate.validate()
        self.items, self.starts = items, estimate.starts
        # one start is sharp already: nothing to put back
        self.missing = missing if estimate.fill_detail > 0 and estimate.starts > 1 else None

    def grouped(self, rows: Tensor) -> Tensor:
        """[B * K, ...] -> [B, K, ...]: each image's K starts."""
        return rows.view(self.items, self.starts, *rows.shape[1:])

    def image(self, iterates: Tensor) -> tuple[Tensor, Tensor | None]:
        """One image's iterates [M, 3, R, R] -> (its answer [1, 3, R, R], the fill detail in it or None)."""
        image = iterates.mean(0, keepdim=True)
        if self.missing is None:
            return image, None
        detail = hole_detail(iterates, self.missing.to(iterates.device), self.estimate.fill_detail)
        return image + detail, detail

    def live(self, rows: Tensor, round_index: int, history: list[list[Reconstruction | None]]) -> Tensor:
        """The current iterates [B * K, 3, R, R] of round `round_index` -> the answers [B, 3, R, R]
        a stop now would give: each image's K current rows with their best iterates of the
        `rounds_averaged` - 1 rounds before (`history`: `ILOSolver.best_after_round`)."""
        if not self.estimate.averages:
            return rows
        groups = self.grouped(rows)
        for r in rounds_before(round_index, self.estimate.rounds_averaged, len(history)):
            if all(b is not None for b in history[r]):
                earlier = torch.cat([b.image for b in history[r]]).to(rows.device)  # type: ignore[union-attr]
                groups = torch.cat([groups, self.grouped(earlier)], 1)
        if self.missing is None:
            return groups.mean(1)
        return torch.cat([self.image(g)[0] for g in groups])

    def pooled(self, rows: list[Reconstruction | None], history: list[list[Reconstruction | None]]
               ) -> list[list[Reconstruction]]:
        """The solver's best rows (K per image) -> per image, the iterates its answer averages:
        its K starts' best first, then their earlier rounds' (`with_earlier_rounds`), in the order
        of the rows; an image whose starts have no finite iterate -> []."""
        groups = with_earlier_rounds(rows, history, self.estimate.rounds_averaged)
        k = self.starts
        return [[g[0] for g in groups[b * k:(b + 1) * k] if g] + [r for g in groups[b * k:(b + 1) * k] for r in g[1:]]
                for b in range(self.items)]

    def answers(self, rows: list[Reconstruction | None], history: list[list[Reconstruction | None]]
                ) -> list[Tensor | None]:
        """Per image, the answer [1, 3, R, R] of its pooled iterates (None where there is none)."""
        return [self.image(torch.cat([it.image for it in pool]))[0] if pool else None
                for pool in self.pooled(rows, history)]

    def spread(self, rows: list[Reconstruction | None]) -> Tensor | None:
        """The per-pixel standard deviation of each image's starts, [B, R, R] in [0, 1] pixel
        units (the mean over the colour channels); None with one start or a missing iterate."""
        if self.starts < 2 or any(r is None for r in rows):
            return None
        images = torch.cat([r.image for r in rows]).clamp(-1, 1) / 2  # type: ignore[union-attr]
        return self.grouped(images).std(dim=1, unbiased=False).mean(dim=1)

    def reconstruction(self, pool: list[Reconstruction], generator: SplitGenerator, measure, settings: dict
                       ) -> Reconstruction | None:
        """One image's pooled iterates -> one `Reconstruction`: the iterates advanced to the latest
        split among them (so one split re-renders them all), the image their answer;
        `measure(image)` its measurement MSE; `settings` what the solve's config says on top of
        the latest iterate's (the method, the estimate). No iterate -> None."""
        if not pool:
            return None
        dev = generator.device
        last = max(pool, key=lambda r: (r.split, r.round_index, r.step))
        states: list[State] = []
        with torch.no_grad():
            for r in pool:
                state = {k: v.to(dev) for k, v in r.state.items()}
                variables = {k: v.to(dev) for k, v in r.variables.items()}
                for split in range(r.split, last.split):
                    state = generator.advance(split, state, variables)
                states.append({k: v.cpu() for k, v in state.items()})
            image, detail = self.image(torch.cat([r.image for r in pool]))
            meas = float(measure(image))
        return Reconstruction(
            split=last.split, state={k: torch.cat([s[k] for s in states]) for k in states[0]},
            variables={k: torch.cat([r.variables[k] for r in pool]) for k in pool[0].variables},
            image=image, measurement_mse=meas, round_index=last.round_index, step=last.step,
            generator_kind=generator.kind, resolution=generator.resolution, generator_id=generator.identity,
            config={**last.config, **settings}, detail=detail)


def best_of(candidates: list[list[Reconstruction | None]]) -> list[Reconstruction | None]:
    """Per item, the best of several runs' best iterates by measurement MSE (the earliest on a tie)."""
    out: list[Reconstruction | None] = []
    for items in zip(*candidates):
        best = None
        for r in items:
            if r is not None and (best is None or r.measurement_mse < best.measurement_mse):
                best = r
        out.append(best)
    return out


def measurement_of(operator, observation: Tensor):
    """image [1, 3, R, R] -> its measurement MSE against `observation` [1, ...] (for `reconstruction`)."""
    return lambda image: measurement_mse(operator.A(image.to(observation.device)), observation)[0]
