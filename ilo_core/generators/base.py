"""The split-generator interface that the ILO solver optimizes through.

A generator is a chain of `num_layers` stages. Split point k (0 <= k < num_layers) cuts
it as G = G_after_k o G_before_k:

- `state_at(k, variables)` is G_before_k: the complete intermediate state after the
  first k stages (an empty dict for k = 0, where the latent variables are the input);
- `render_from(k, state, variables)` is G_after_k: the image from that state, reading
  the latent variables that the later stages use.

`render_from(k, state_at(k, v), v) == render(v)` holds exactly for every k.

Variables are a dict of named tensors (batch first). Each name belongs to a group:
"latents" (input codes) or "noises" (per-layer noise maps); the intermediate state is
the third group, "state". A generator never changes during a solve: its parameters do
not require gradients and no method writes to the module.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

Variables = dict[str, Tensor]
State = dict[str, Tensor]

GROUPS = ("latents", "noises", "state")


@dataclass(frozen=True)
class FaceFrame:
    """Where FFHQ's landmark square (`ilo_core.photo.alignment.quad_from_landmarks`) sits in a
    generator's images, in fractions of the image side: its side, and its centre (x, y).
    FFHQ-trained generators are (1, 0.5, 0.5) by construction; a generator trained on tighter
    crops has side > 1. `ilo_core/evaluation/studies/face_frame.py` measures it on a generator's samples."""

    side: float = 1.0
    x: float = 0.5
    y: float = 0.5


@dataclass(frozen=True)
class Tuning:
    """How ILO is best run on a generator, declared by the generator (as its `face_frame` is):
    what `ilo_core.engine.presets` combines with a task and a method into the default config.
    Each value is a measurement on one checkpoint; docs/tuning.md has one record per value.

    radii: per variable group ("latents", "noises", "state"), the l1 radius of each round (round
    0, CSGM, None: unconstrained; a longer schedule doubles the last). lpips / lpips_net: whether
    LPIPS joins the MSE where the measurements have an image view, and on which network.
    geodesic_weight: PULSE's geocross on the latent rows. The estimate of holes and sparse
    pixels (`ilo_core.engine.estimate`): fill_starts (starts averaged), fill_rounds (rounds
    averaged), fill_detail (px, painted holes). hole_cells: px, a painted hole's state cells at
    least this large stay in range (`SolverConfig.hole_block`; 0 = off)."""

    radii: dict[str, tuple[float | None, ...]] = field(default_factory=lambda: {
        "latents": (None, 300.0, 500.0, 1000.0), "noises": (None, 300.0, 2000.0, 2000.0),
        "state": (None, 500.0, 1000.0, 2000.0)})  # the paper's (appendix 7.3, StyleGAN-2)
    lpips: bool = True
    lpips_net: str = "vgg"
    geodesic_weight: float = 0.01
    fill_starts: int = 1
    fill_rounds: int = 1
    fill_detail: float = 0.0
    hole_cells: int = 0


def weights_identity(module: nn.Module) -> str:
    """16 hex digits of the sha256 of a module's parameters and buffers (names, dtypes,
    shapes and bytes): the same weights give the same identity in any process."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy() if t.numel() else b"")
    return digest.hexdigest()[:16]


class SplitGenerator(nn.Module, ABC):
    """Base class: a frozen generator that can be cut at any split point."""

    #: short identifier, recorded in saved results
    kind: str = "generator"
    #: output images are [B, 3, resolution, resolution] in [-1, 1]
    resolution: int
    #: number of stages; valid split points are 0 .. num_layers - 1
    num_layers: int
    #: True when every state map (split > 0) is the output of a ReLU, so G_before's range is >= 0
    #: (`SolverConfig.relu_range` keeps the optimized state there)
    nonnegative_state: bool = False
    #: how its faces are framed: the page and CLI cut a photo's face to the same frame
    face_frame: FaceFrame = FaceFrame()
    #: how ILO is best run on it (`Tuning`; the paper's values unless a generator measured its own)
    tuning: Tuning = Tuning()
    #: a hash of the weights it was built with (set by `freeze`, before any speed path):
    #: saved results record it, and refuse to render with other weights
    identity: str = ""

    def freeze(self) -> "SplitGenerator":
        """Eval mode, no parameter gradients, `identity` from the weights. Returns self."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        self.identity = weights_identity(self)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # --- variables -------------------------------------------------------------------
    @abstractmethod
    def sample_variables(self, batch: int, generator: torch.Generator | None = None) -> Variables:
        """Random starting values of every variable, drawn from `generator` (on self.device)."""

    @abstractmethod
    def variable_group(self, name: str) -> str:
        """The group ("latents" or "noises") of a variable name."""

    def active_variables(self, split: int, round_index: int = 0) -> list[str]:
        """Names of the variables that the stages after `split` read and a round may optimize."""
        return list(self.sample_variables(1).keys())

    def latent_rows(self, split: int) -> slice | None:
        """Rows of the "latent" variable used after `split` (for the geodesic loss), or None."""
        return None

    def optimizable_state(self, split: int) -> list[str]:
        """Names of the state tensors optimized at `split` (the rest are carried unchanged)."""
        return ["features"] if split > 0 else []

    # --- the chain -------------------------------------------------------------------
    @abstractmethod
    def advance(self, split: int, state: State, variables: Variables) -> State:
        """Run stage `split`: the state at split point `split` -> the state at `split + 1`."""

    @abstractmethod
    def to_image(self, state: State) -> Tensor:
        """The final state (after the last stage) -> image [B, 3, R, R] in [-1, 1]."""

    def state_at(self, split: int, variables: Variables) -> State:
        """G_before_split(variables): the complete intermediate state at `split`."""
        self._check_split(split, allow_end=True)
        state: State = {}
        for k in range(split):
            state = self.advance(k, state, variables)
        return state

    def render_from(self, split: int, state: State, variables: Variables) -> Tensor:
        """G_after_split(state, variables): image [B, 3, R, R] in [-1, 1]."""
        self._check_split(split, allow_end=True)
        for k in range(split, self.num_layers):
            state = self.advance(k, state, variables)
        return self.to_image(state)

    def render(self, variables: Variables) -> Tensor:
        """The full generator: image [B, 3, R, R] in [-1, 1]."""
        return self.render_from(0, {}, variables)

    def _check_split(self, split: int, allow_end: bool = False) -> None:
        top = self.num_layers if allow_end else self.num_layers - 1
        if not 0 <= split <= top:
            raise ValueError(f"split point {split} is out of range 0..{top} for {self.kind}")

    def describe(self) -> dict[str, object]:
        """Facts a UI shows: kind, resolution, split points and their state shapes."""
        return {"kind": self.kind, "resolution": self.resolution, "num_layers": self.num_layers}
