"""A solved reconstruction: every variable needed to re-render it, saved as one file.

A file names the generator that made it (`SplitGenerator.identity`, a hash of its weights);
rendering it with other weights is refused in one sentence (files from before the identity
load with a warning). A file's rows, shapes and values are checked against the generator
before anything is rendered: a small file cannot make the page render thousands of rows."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch import Tensor

from ilo_core.atomic import write_bytes
from ilo_core.generators.base import SplitGenerator, State, Variables


MAX_ROWS = 64  # starts a result may hold (the defaults average 6)


@dataclass
class Reconstruction:
    """The best iterate of one image: render_from(split, state, variables) reproduces `image`.

    State and variables have batch size K: the K starts whose mean image is the answer
    (`Estimate.starts`; usually K = 1); `image` is that mean, [1, 3, R, R] in [-1, 1],
    plus `detail` where fill detail was asked for (`ilo_core.engine.estimate`; [1, 3, R, R], else None).
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
    generator_id: str = ""  # the identity of the generator that made it ("" in files made before it)

    def render(self, generator: SplitGenerator) -> Tensor:
        """Re-render the image with `generator`: the mean of its K rows (plus `detail`), [1, 3, R, R].
        Raises ValueError, before rendering, when the generator is not the one that made it or
        the rows do not fit it (`check_fits`)."""
        self.check_fits(generator)
        dev = generator.device
        with torch.no_grad():
            rows = generator.render_from(self.split, {k: v.to(dev) for k, v in self.state.items()},
                                         {k: v.to(dev) for k, v in self.variables.items()})
        image = rows if rows.shape[0] == 1 else rows.mean(0, keepdim=True)
        return image if self.detail is None else image + self.detail.to(dev)

    def check_fits(self, generator: SplitGenerator) -> None:
        """ValueError (one sentence) unless `generator` made this result and every tensor has the
        shape it gives: the same split's state and variables, at most MAX_ROWS rows, finite."""
        if generator.kind != self.generator_kind or generator.resolution != self.resolution:
            raise ValueError(f"this result was made with {self.generator_kind} at {self.resolution} px; "
                             f"the loaded generator is {generator.kind} at {generator.resolution} px")
        if self.generator_id and generator.identity and self.generator_id != generator.identity:
            raise ValueError(f"this result was made by another {self.generator_kind} {self.resolution} px generator "
                             f"(weights {self.generator_id}) than the loaded one (weights {generator.identity}); "
                             f"load it with the generator that made it")
        if not self.generator_id:
            warnings.warn("this result file does not say which generator made it (made before ILO Studio "
                          "recorded it): it is rendered with the loaded one", stacklevel=3)
        if not 0 <= self.split < generator.num_layers:
            raise ValueError(f"its layer {self.split} is not one of the generator's 0..{generator.num_layers - 1}")
        with torch.no_grad():
            variables = generator.sample_variables(1)
            state = generator.state_at(self.split, variables)
        rows = {t.shape[0] if t.ndim else 0 for t in (*self.state.values(), *self.variables.values())}
        if len(rows) != 1 or not 1 <= next(iter(rows)) <= MAX_ROWS:
            raise ValueError(f"its tensors hold {sorted(rows)[:4]} rows; a result has one number of rows, "
                             f"1 to {MAX_ROWS}")
        for group, saved, expected in (("variable", self.variables, variables), ("state", self.state, state)):
            if set(saved) != set(expected):
                raise ValueError(f"its {group} tensors {sorted(saved)[:6]} are not the generator's {sorted(expected)[:6]}")
            for name, tensor in saved.items():
                if tuple(tensor.shape[1:]) != tuple(expected[name].shape[1:]) or not tensor.is_floating_point():
                    raise ValueError(f"its {group} {name} is {tensor.dtype} {tuple(tensor.shape)}; the generator's "
                                     f"is {tuple(expected[name].shape[1:])} per row")
                if not bool(torch.isfinite(tensor).all()):
                    raise ValueError(f"its {group} {name} has NaN or infinite values")
        size = (1, 3, self.resolution, self.resolution)
        for name, tensor in (("image", self.image), ("detail", self.detail)):
            if tensor is not None and (tuple(tensor.shape) != size or not bool(torch.isfinite(tensor).all())):
                raise ValueError(f"its {name} is not a finite {size} image")

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
                "resolution": str(self.resolution), "config": json.dumps(self.config),
                "generator_id": self.generator_id}
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
            generator_id=meta.get("generator_id", ""),
        )
