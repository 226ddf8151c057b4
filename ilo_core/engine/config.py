"""The solver's configuration: one `SolverConfig`, validated before any work starts.

The paper's values (appendix 7.3) are the defaults of its fields; what a generator, a task and
a method change is `ilo_core.engine.presets`."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Sequence

from ilo_core.engine.estimate import LEGACY_NAMES, Estimate

RADIUS_GROUPS = ("latents", "noises", "state")
# what the solver runs (CSGM: round 0 only; ilo-auto: ILO choosing its radii and rounds, `ilo_core.engine.auto`)
SOLVER_METHODS = ("ilo", "csgm-mse", "csgm-lpips", "csgm-mse-lpips", "ilo-auto")
ILO_METHODS = ("ilo", "ilo-auto")  # the methods that run ILO's rounds (the rest are CSGM: round 0 only)
ROUNDS = 4                  # ILO rounds (the paper: the first four layers), fewer on a shallower generator
STEPS_PER_ROUND = 50        # Adam steps per round (paper appendix 7.3)
LEARNING_RATE = 0.1         # Adam's base learning rate (ramp-up, cosine ramp-down)
MSE_WEIGHT = 1.0
GEODESIC_WEIGHT = 0.01      # geocross on the active latent rows (the paper's StyleGAN-2 value)


@dataclass
class SolverConfig:
    """Everything that decides an ILO (or CSGM) solve.

    Round r optimizes from split point `start_split + r` for `steps[r]` Adam steps.
    Radii are l1-ball radii (None or inf = unconstrained) of each variable group's
    deviation from its value at the start of the round, one entry per round.
    """

    steps: Sequence[int] = (STEPS_PER_ROUND,) * ROUNDS  # steps per round
    start_split: int = 0                              # split point of round 0 (0 = latent space, CSGM)
    lr: float | Sequence[float] = LEARNING_RATE       # Adam lr per round (ramp-up, cosine ramp-down)
    radii: dict[str, Sequence[float | None]] = field(default_factory=dict)  # group -> per-round radius
    mse_weight: float = MSE_WEIGHT                    # measurement MSE
    lpips_weight: float = 1.0                         # LPIPS on the operator's perceptual view
    geodesic_weight: float = GEODESIC_WEIGHT          # geocross on the active latent rows
    lpips_net: str = "vgg"                            # "vgg" or "alex"
    lpips_size: int | None = 256                      # LPIPS input size (None = native)
    sna: bool = False                                 # stochastic noise addition (denoising)
    spherical_projection: bool = True                 # keep latent rows / noise maps on their spheres
    l1_projection: bool = True                        # project onto the l1 balls of `radii`
    range_projection_steps: int = 0                   # Algorithm 1 line 5 after each round (0 = off)
    hole_block: int = 0                               # px, painted holes: state maps whose cells cover at least
                                                      # hole_block x hole_block pixels keep, in cells wholly inside
                                                      # the hole, their value at the round's start (0 = off;
                                                      # `ilo_core.engine.constraints.hole_cells`)
    relu_range: bool = False                          # state maps that follow a ReLU (generators with
                                                      # `nonnegative_state`) stay >= 0, the range of the
                                                      # layers before them; False = unconstrained sign
    estimate: Estimate = field(default_factory=Estimate)  # how the iterates become the answer
                                                      # (`ilo_core.engine.estimate`): starts, rounds averaged,
                                                      # fill detail, best of sequential starts
    seed: int = 0                                     # seeds the initial variables
    preview_every: int = 10                           # send the current image every N steps
    method: str = "ilo"                               # label: ilo or a csgm-* baseline

    @property
    def rounds(self) -> int:
        return len(self.steps)

    @property
    def total_steps(self) -> int:
        """Steps of the whole solve (`estimate.best_of` runs of the schedule)."""
        return sum(self.steps) * self.estimate.best_of

    def lr_at(self, round_index: int) -> float:
        return float(self.lr if isinstance(self.lr, (int, float)) else self.lr[round_index])

    def radius(self, group: str, round_index: int) -> float:
        values = self.radii.get(group)
        if values is None or not self.l1_projection:
            return math.inf
        value = values[round_index]
        return math.inf if value is None else float(value)

    def validate(self, num_layers: int | None = None) -> "SolverConfig":
        """Raise ValueError with a clear message for any bad value. Returns self."""
        steps = self.steps
        if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence):
            raise ValueError(f"steps must be a list of integers, one per round, got {steps!r}")
        if not steps:
            raise ValueError("steps is empty: give at least one round")
        for s in steps:
            if not isinstance(s, int) or isinstance(s, bool) or s < 1:
                raise ValueError(f"every round needs a positive integer number of steps, got {list(steps)}")
        if not isinstance(self.lr, (int, float)):
            if len(self.lr) != self.rounds:
                raise ValueError(f"lr has {len(self.lr)} entries for {self.rounds} rounds")
        for lr in ([self.lr] if isinstance(self.lr, (int, float)) else self.lr):
            if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
                raise ValueError(f"learning rates must be positive numbers, got {self.lr!r}")
        for group, values in self.radii.items():
            if group not in RADIUS_GROUPS:
                raise ValueError(f"unknown radius group {group!r}; use {', '.join(RADIUS_GROUPS)}")
            if values is None:
                continue
            if len(values) != self.rounds:
                raise ValueError(f"radii[{group!r}] has {len(values)} entries for {self.rounds} rounds")
            for v in values:
                if v is not None and (not isinstance(v, (int, float)) or math.isnan(v) or v < 0):
                    raise ValueError(f"radii must be non-negative numbers (or None), got {group}: {list(values)}")
        for name in ("mse_weight", "lpips_weight", "geodesic_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        if self.mse_weight == 0 and self.lpips_weight == 0:
            raise ValueError("mse_weight and lpips_weight are both 0: nothing ties the result to the observation")
        if self.lpips_net not in ("vgg", "alex"):
            raise ValueError(f"lpips_net must be 'vgg' or 'alex', got {self.lpips_net!r}")
        if self.lpips_size is not None and (not isinstance(self.lpips_size, int) or self.lpips_size < 32):
            raise ValueError(f"lpips_size must be an integer >= 32 or None, got {self.lpips_size!r}")
        if not isinstance(self.preview_every, int) or self.preview_every < 1:
            raise ValueError(f"preview_every must be a positive integer, got {self.preview_every!r}")
        if not isinstance(self.hole_block, int) or isinstance(self.hole_block, bool) or self.hole_block < 0:
            raise ValueError(f"hole_block must be a whole number of pixels >= 0, got {self.hole_block!r}")
        if not isinstance(self.estimate, Estimate):
            raise ValueError(f"estimate must be an Estimate, got {type(self.estimate).__name__}")
        self.estimate.validate()
        if not isinstance(self.range_projection_steps, int) or self.range_projection_steps < 0:
            raise ValueError(f"range_projection_steps must be >= 0, got {self.range_projection_steps!r}")
        if not isinstance(self.start_split, int) or self.start_split < 0:
            raise ValueError(f"start_split must be >= 0, got {self.start_split!r}")
        if self.method not in SOLVER_METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(SOLVER_METHODS)}")
        if num_layers is not None and self.start_split + self.rounds > num_layers:
            raise ValueError(f"{self.rounds} rounds from split {self.start_split} need "
                             f"{self.start_split + self.rounds} layers; the generator has {num_layers}")
        return self

    def same_before(self, other: "SolverConfig", round_index: int) -> bool:
        """True when `self` and `other` run rounds 0 .. round_index - 1 identically and share every
        setting that is not per round (so a run of `other` can go on from round `round_index`)."""
        per_round = {"steps", "lr", "radii"}
        for f in fields(self):
            if f.name not in per_round and getattr(self, f.name) != getattr(other, f.name):
                return False
        if self.range_projection_steps and self.rounds != other.rounds:
            return False  # the last round's projection depends on the number of rounds
        if len(self.steps) < round_index + 1 or len(other.steps) < round_index:
            return False
        for r in range(round_index):
            if self.steps[r] != other.steps[r] or self.lr_at(r) != other.lr_at(r):
                return False
        for group in set(self.radii) | set(other.radii):
            for r in range(round_index):
                if self.radius(group, r) != other.radius(group, r):
                    return False
        return True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["steps"] = list(self.steps)
        d["radii"] = {k: (None if v is None else [None if x is None or math.isinf(x) else x for x in v])
                      for k, v in self.radii.items()}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> "SolverConfig":
        """The inverse of `to_dict`; also reads the flat names of files saved before the estimate
        had a record of its own (mean_of, mean_rounds, fill_detail, restarts)."""
        d = dict(d)
        estimate = dict(d.pop("estimate", None) or {})
        for old in (*LEGACY_NAMES, "fill_detail"):
            if old in d:
                estimate[LEGACY_NAMES.get(old, old)] = d.pop(old)
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        if "steps" in d:
            d["steps"] = tuple(d["steps"])
        return cls(**d, estimate=Estimate.from_dict(estimate))
