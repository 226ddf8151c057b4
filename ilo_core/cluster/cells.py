"""A cell: what one unit of a job computes (its spec, JSON) and what it needs to run (its
resources). Its key is a hash of the spec, so the same work has the same key in any process,
on any machine, in any run; the spec names the code version, so other code makes other keys."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Resources:
    """What a cell holds while it runs: CPU cores and a share of one GPU (0 < gpus <= 1 packs
    several cells on a card; Ray's scheduler counts them)."""

    cpus: float = 1.0
    gpus: float = 0.0


@dataclass(frozen=True)
class Cell:
    """One unit of work. `spec`: JSON-able, everything the record depends on (the inputs by
    their hashes); `payload`: what the spec names by hash (bytes, arrays), sent with the cell
    but not hashed, or a function that reads it when the cell is sent (a folder's photos are
    not all held at once); `label`: a short name for logs."""

    spec: dict[str, Any]
    label: str = ""
    resources: Resources = Resources()
    payload: Any = field(default=None, compare=False, repr=False)

    @cached_property
    def key(self) -> str:
        return spec_key(self.spec)

    def loaded(self) -> "Cell":
        """The cell with its payload read (as it is sent to a worker)."""
        return replace(self, payload=self.payload()) if callable(self.payload) else self


def spec_key(spec: dict[str, Any]) -> str:
    """24 hex digits of the sha256 of the spec's canonical JSON."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@lru_cache(maxsize=1)
def code_version() -> str:
    """16 hex digits of the sha256 of the engine's source (every ilo_core/**/*.py, by path and
    bytes): records made by other code have other keys."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def one_line(err: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
