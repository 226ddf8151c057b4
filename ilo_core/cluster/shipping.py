"""How a job's generator reaches the process that runs a cell, and what that process keeps.

The embedded default travels by name (every install has it). Any other generator travels as
the engine's own `.safetensors` bytes (`ilo_core.checkpoints.converted`: weights, latent_avg and
the Gaussianization fit; no code), put once into Ray's object store by the driver: a worker
needs no copy of the user's checkpoint file, no download and no fit, and rebuilds the generator
with the same safe loader a file goes through. The rebuilt generator's weights identity must
be the driver's, or the cell is refused.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ilo_core.accelerate import reference_requested
from ilo_core.checkpoints import load_generator
from ilo_core.checkpoints.converted import FORMAT, metadata
from ilo_core.checkpoints.download import KNOWN, cached_path
from ilo_core.checkpoints.loading import checkpoint_format, convert_checkpoint
from ilo_core.generators.base import SplitGenerator

EMBEDDED = "default"


@dataclass(frozen=True)
class ShippedGenerator:
    """A generator as a worker receives it: `name` (the embedded one) or `data` (converted
    .safetensors bytes), with the driver's weights identity and speed-path switch."""

    identity: str
    reference: bool = False
    name: str | None = None
    data: bytes | None = None

    @classmethod
    def of(cls, spec: str | Path, generator: SplitGenerator, reference: bool | None = None) -> "ShippedGenerator":
        """What to send for the generator `spec` (as given to `load_generator`) the driver loaded;
        `reference` None: the driver's own switch (ILO_REFERENCE, set by --reference)."""
        reference = reference_requested() if reference is None else reference
        if str(spec) == EMBEDDED:
            return cls(generator.identity, reference, name=EMBEDDED)
        return cls(generator.identity, reference, data=converted_bytes(spec))


def generator_spec(generator: SplitGenerator, reference: bool | None = None) -> dict[str, Any]:
    """What a cell's spec says of its generator: the weights identity, kind, resolution and the
    speed-path switch (`reference` None: this process's)."""
    reference = reference_requested() if reference is None else reference
    return {"identity": generator.identity, "kind": generator.kind, "resolution": generator.resolution,
            "reference": reference}


def converted_bytes(spec: str | Path) -> bytes:
    """The engine's .safetensors bytes of a named or file checkpoint (converted in a temporary
    folder when the file is in another format)."""
    path = Path(spec)
    if str(spec) in KNOWN:  # the cache's converted file (made by the driver's load), else its download
        path = cached_path(str(spec)).with_suffix(".safetensors")
        path = path if path.is_file() else cached_path(str(spec))
    if checkpoint_format(path) == "safetensors" and metadata(path).get("format") == FORMAT:
        return path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="ilo-ship-") as folder:
        target = Path(folder) / "generator.safetensors"
        convert_checkpoint(path, target)
        return target.read_bytes()


def rebuild(shipped: ShippedGenerator, device: str) -> SplitGenerator:
    """The generator a ShippedGenerator describes, on `device`; ValueError if its weights are
    not the driver's."""
    if shipped.name is not None:
        generator = load_generator(shipped.name, device, reference=shipped.reference)
    else:
        fd, name = tempfile.mkstemp(prefix="ilo-shipped-", suffix=".safetensors")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(shipped.data or b"")
            generator = load_generator(name, device, reference=shipped.reference)
        finally:
            os.unlink(name)
    if generator.identity != shipped.identity:
        raise ValueError(f"the worker's generator has weights {generator.identity}, the driver's {shipped.identity}")
    return generator


def cell_device(gpus: float) -> str:
    """Where a cell runs: its GPU share on CUDA when it was given one, else the CPU."""
    return "cuda" if gpus > 0 and torch.cuda.is_available() else "cpu"


class WorkerContext:
    """What a cell function gets besides its spec: the job's generator (built once per process
    and device, never changed: cells only read it), `memo` for other things a process builds
    once (the LPIPS network), and `say` to tell the driver where a long cell is ("frame 12 of
    48"), shown beside its worker in the progress bar (the runner sets it for each cell)."""

    def __init__(self, shipped: ShippedGenerator | None, device: str, generator: SplitGenerator | None = None) -> None:
        self.shipped, self.device = shipped, device
        self._generator = generator
        self._memo: dict[str, Any] = {}
        self.say: Callable[[str], None] = lambda text: None

    def generator(self) -> SplitGenerator:
        if self._generator is None:
            if self.shipped is None:
                raise ValueError("this job ships no generator")
            self._generator = rebuild(self.shipped, self.device)
        return self._generator

    def memo(self, name: str, factory: Callable[[], Any]) -> Any:
        if name not in self._memo:
            self._memo[name] = factory()
        return self._memo[name]
