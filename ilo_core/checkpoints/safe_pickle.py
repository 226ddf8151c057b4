"""A pickle reader that runs no code from the file: NVlabs network pickles as plain records.

NVlabs' `stylegan2-ada-pytorch` pickles embed each network's Python source
(`torch_utils.persistence`), and NVlabs' own loader executes it. `load_records` instead
unpickles with a closed list of globals, each replaced by a function of ours that only
builds data:

- `torch_utils.persistence._reconstruct_persistent_obj(meta)` -> `PersistentRecord` with
  the class name and the object's state (its `__dict__`); `meta["module_src"]` is dropped
  unread;
- torch's tensor helpers (`_rebuild_tensor_v2`, `_rebuild_parameter`) and
  `torch.storage._load_from_bytes`, whose payload is read by `torch.load(weights_only=True)`;
- `collections.OrderedDict` and `dnnlib.util.EasyDict` -> dicts;
- `numpy` dtypes and scalars (never of object dtype).

Any other global is refused with `UnsafePickleError` before anything it names is touched.
Before unpickling, the file's opcodes are walked (`pickle_problem`, which builds nothing):
a record that claims more bytes than the file holds, or a cut file, is refused without
allocating what it claims. A BUILD on a record (which would overwrite its methods) is refused.
"""

from __future__ import annotations

import collections
import io
import pickle
import pickletools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
import torch


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for something outside the allowed list; nothing of it was run."""


@dataclass
class PersistentRecord:
    """What an NVlabs persistent object was: its class name and state, no code."""

    class_name: str
    state: dict = field(default_factory=dict)
    version: int | None = None

    def __setstate__(self, state: object) -> None:
        raise UnsafePickleError("a BUILD instruction on a persistent record")

    def module(self, name: str) -> "PersistentRecord | None":
        """A submodule of this torch.nn.Module record by attribute name, or None."""
        child = (self.state.get("_modules") or {}).get(name)
        return child if isinstance(child, PersistentRecord) else None

    def tensors(self) -> dict[str, torch.Tensor]:
        """This module's own parameters and buffers (not its submodules'), by name."""
        out = {}
        for group in ("_parameters", "_buffers"):
            for name, value in (self.state.get(group) or {}).items():
                if isinstance(value, torch.Tensor):
                    out[name] = value
        return out


class PlainDict(dict):
    """Stands in for `dnnlib.util.EasyDict` (a dict with attribute access): data only."""

    def __setstate__(self, state: object) -> None:
        if state:  # an EasyDict's items come as dict items; attributes would shadow its methods
            raise UnsafePickleError("a BUILD instruction that sets attributes on a dict")

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _reconstruct_persistent(meta: dict) -> PersistentRecord:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafePickleError("a persistent object of an unknown kind")
    state = meta.get("state")
    return PersistentRecord(class_name=str(meta.get("class_name")), state=state if isinstance(state, dict) else {},
                            version=meta.get("version"))


def _load_storage_bytes(data: bytes) -> object:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _numpy_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args[:1])
    if dtype.hasobject:
        raise UnsafePickleError("a numpy object dtype")
    return dtype


def _numpy_scalar(dtype: np.dtype, data: bytes = b"") -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UnsafePickleError("a numpy scalar that is not plain data")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


ALLOWED: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): PlainDict,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _numpy_dtype,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("a persistent id (not an NVlabs network pickle)")


def pickle_problem(f: BinaryIO, to_end: bool = True) -> str | None:
    """Why the pickle in `f` (read from its current position) is not whole (None when it is):
    its opcodes are walked to STOP, which must be the file's last byte when `to_end` (a legacy
    torch.save file holds several pickles in a row); a record longer than what is left, a cut
    file or a bad opcode is named. Nothing is built, nothing is allocated beyond the bytes
    actually present."""
    try:
        for opcode, _, _ in pickletools.genops(f):
            if opcode.name == "STOP":
                break
        else:
            return "the pickle has no end mark"
    except Exception as err:  # noqa: BLE001 (untrusted bytes: whatever genops trips on, the file is damaged)
        text = str(err).strip()
        return f"the pickle is cut short or damaged ({text.splitlines()[0][:80] if text else type(err).__name__})"
    if to_end and f.read(1):
        return "bytes follow the pickle's end mark"
    return None


def load_records(path: str | Path) -> Any:
    """Unpickle `path` with only the allowed globals (see the module notes); raises
    UnsafePickleError for a forbidden global and pickle.UnpicklingError for a damaged file."""
    with open(path, "rb") as f:
        problem = pickle_problem(f, to_end=False)
        if problem is not None:
            raise pickle.UnpicklingError(problem)
        f.seek(0)
        return _RestrictedUnpickler(f).load()
