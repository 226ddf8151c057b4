"""A solved reconstruction: every variable needed to re-render it, saved as one file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch import Tensor

from ilo_core.atomic import write_bytes
from ilo_core.generators.base import SplitGenerator, State, Variables


@dataclass
class Reconstruction:
    """The best iterate of one image: render_from(split, state, variables) reproduces `image`.

    State and variables have batch size K: the K starts whose mean image is the answer
    (`SolverConfig.mean_of`; usually K = 1); `image` is that mean, [1, 3, R, R] in [-1, 1],
    plus `detail` where fill detail was asked for (`ilo_core.detail`; [1, 3, R, R], else None).
    """

    split: int
    state: State
    variables: Variables
    image: Tensor
    measurement_mse: float
    round_index: int
    step: int
    generator_kind: str
    resolution: int
    config: dict = field(default_factory=dict)
    detail: Tensor | None = None

    def render(self, generator: SplitGenerator) -> Tensor:
        """Re-render the image with `generator`: the mean of its K rows (plus `detail`), [1, 3, R, R]."""
        if generator.kind != self.generator_kind or generator.resolution != self.resolution:
            raise ValueError(f"this result was made with {self.generator_kind} at {self.resolution} px; "
                             f"the loaded generator is {generator.kind} at {generator.resolution} px")
        dev = generator.device
        with torch.no_grad():
            rows = generator.render_from(self.split, {k: v.to(dev) for k, v in self.state.items()},
                                         {k: v.to(dev) for k, v in self.variables.items()})
        image = rows if rows.shape[0] == 1 else rows.mean(0, keepdim=True)
        return image if self.detail is None else image + self.detail.to(dev)

    def save(self, path: str | Path) -> None:
        """Write one safetensors file (tensors + JSON metadata), whole or not at all."""
        tensors = {f"state.{k}": v for k, v in self.state.items()}
        tensors.update({f"variables.{k}": v for k, v in self.variables.items()})
        tensors["image"] = self.image
        if self.detail is not None:
            tensors["detail"] = self.detail
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        meta = {"format": "ilo-studio-reconstruction/1", "split": str(self.split),
                "measurement_mse": repr(self.measurement_mse), "round_index": str(self.round_index),
                "step": str(self.step), "generator_kind": self.generator_kind,
                "resolution": str(self.resolution), "config": json.dumps(self.config)}
        write_bytes(save(tensors, metadata=meta), path)

    @classmethod
    def load(cls, path: str | Path) -> "Reconstruction":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != "ilo-studio-reconstruction/1":
            raise ValueError(f"{path} is not an ILO Studio result file")
        tensors = load_file(str(path))
        return cls(
            split=int(meta["split"]),
            state={k[6:]: v for k, v in tensors.items() if k.startswith("state.")},
            variables={k[10:]: v for k, v in tensors.items() if k.startswith("variables.")},
            image=tensors["image"],
            measurement_mse=float(meta["measurement_mse"]),
            round_index=int(meta["round_index"]),
            step=int(meta["step"]),
            generator_kind=meta["generator_kind"],
            resolution=int(meta["resolution"]),
            config=json.loads(meta["config"]),
            detail=tensors.get("detail"),
        )
