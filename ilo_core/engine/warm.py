"""Warm starts: a clip's frames solved one from the next, so that the repair does not flicker.

The key frame is solved in full (its config: all of ILO's rounds). Every other frame starts
from its neighbour's variables where its last `WarmStart.rounds` rounds began
(`Solve.final_variables(chain_round(...))`: each start's state at that split, its latents and
noises) and runs those rounds again, `WarmStart.steps` steps each, inside l1 balls of the key
frame's radii times `radius_share` around the neighbour's values: the paper's video mode (its
code's `is_video`, which re-ran the last layer only), made rounds of Algorithm 1 rather than a
separate loop. A warm frame's config is the key frame's with `start_split` at the first re-run
round's split (`warm_config`); on a generator whose optimized noises depend on the round number
(StyleGAN-2) those of the re-run rounds' own numbers are optimized, the rest carried over. The
frame's answer then keeps `carry` of its neighbour's answer (`carry_over`): the mean of a few
frames, as a solve's answer is the mean of a few rounds (`Estimate.rounds_averaged`).

Defaults measured on moving faces nobody tuned on (docs/tuning.md, "Warm-started frames";
`python -m ilo_core.evaluation.studies video_flicker`): WARM_STEPS, WARM_ROUNDS,
WARM_RADIUS_SHARE, WARM_CARRY.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ilo_core.engine.config import RADIUS_GROUPS, SolverConfig

from torch import Tensor

WARM_STEPS = 10          # Adam steps of each re-run round
WARM_ROUNDS = 2          # the key frame's last rounds re-run
WARM_RADIUS_SHARE = 0.25 # of the key frame's radii in those rounds
WARM_CARRY = 0.5         # of the neighbour's answer kept in a warm frame's answer


@dataclass(frozen=True)
class WarmStart:
    """How a clip's later frames are solved: the key frame's last `rounds` rounds, `steps` Adam
    steps each, inside l1 balls of `radii` (group -> radius in every re-run round; a group left
    out gets `radius_share` times the key frame's radius, unconstrained where that one is);
    `carry` (0 to < 1) of the neighbour's answer kept in the frame's answer."""

    steps: int = WARM_STEPS
    rounds: int = WARM_ROUNDS
    radius_share: float = WARM_RADIUS_SHARE
    carry: float = WARM_CARRY
    radii: dict[str, float | None] = field(default_factory=dict)

    def validate(self) -> "WarmStart":
        if not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps < 1:
            raise ValueError(f"a warm-started frame needs a positive whole number of steps, got {self.steps!r}")
        if not isinstance(self.rounds, int) or isinstance(self.rounds, bool) or self.rounds < 1:
            raise ValueError(f"a warm-started frame runs at least one round, got {self.rounds!r}")
        if not (isinstance(self.radius_share, (int, float)) and math.isfinite(self.radius_share)
                and self.radius_share > 0):
            raise ValueError(f"the warm radius share must be a positive number, got {self.radius_share!r}")
        if not (isinstance(self.carry, (int, float)) and 0 <= self.carry < 1):
            raise ValueError(f"the share of the neighbour's answer carried must be from 0 to below 1, got {self.carry!r}")
        for group, value in self.radii.items():
            if group not in RADIUS_GROUPS:
                raise ValueError(f"unknown radius group {group!r}; use {', '.join(RADIUS_GROUPS)}")
            if value is not None and not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"warm radii must be non-negative numbers (or None), got {group}: {value!r}")
        return self


def warm_config(key: SolverConfig, warm: WarmStart) -> SolverConfig:
    """The config of a warm-started frame: the key frame's last `warm.rounds` rounds alone, from
    the first one's split, `warm.steps` steps each, the warm radii; the answer averages the same
    starts and at most as many rounds as run."""
    warm.validate()
    if warm.rounds > key.rounds:
        raise ValueError(f"a warm-started frame re-runs at most the key frame's {key.rounds} rounds, not {warm.rounds}")
    first = key.rounds - warm.rounds
    rounds = range(first, key.rounds)
    radii = {}
    for group in RADIUS_GROUPS:
        if group in warm.radii:
            radii[group] = [warm.radii[group]] * warm.rounds
        elif any(key.radius(group, r) != math.inf for r in rounds):
            radii[group] = [None if key.radius(group, r) == math.inf else key.radius(group, r) * warm.radius_share
                            for r in rounds]
    return replace(key, start_split=key.start_split + first, steps=(warm.steps,) * warm.rounds,
                   lr=[key.lr_at(r) for r in rounds], radii=radii,
                   estimate=replace(key.estimate, rounds_averaged=min(key.estimate.rounds_averaged, warm.rounds),
                                    best_of=1), range_projection_steps=0)


def chain_round(config: SolverConfig, warm: WarmStart) -> int:
    """The round of a finished solve of `config` whose kept start a warm frame starts from
    (`Solve.round_start`): the state at the split of the first round a warm frame re-runs."""
    return config.rounds - warm.rounds + 1


def carry_over(answer: Tensor, previous: Tensor | None, carry: float) -> Tensor:
    """A warm frame's answer [B, 3, R, R] in [-1, 1]: `carry` of its neighbour's (the same
    shape, in the generator's square, where the face sits still) and the rest its own."""
    if previous is None or carry == 0:
        return answer
    return (1 - carry) * answer + carry * previous.to(answer.device)
