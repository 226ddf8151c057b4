"""Reading generator checkpoints safely, and `load_generator` (format detection by content).

Nothing in a checkpoint is ever executed: PyTorch files are read with `weights_only=True`,
which rebuilds tensors and plain containers only. The one extra global allowed is
`argparse.Namespace`, which rosinality's `train.py` stores as the checkpoint's "args"
(it becomes a plain attribute bag; no code runs). Anything else a file asks for is refused
with one line that names it.
"""

from __future__ import annotations

import argparse
import pickle
import re
import zipfile
from pathlib import Path

import torch

from ilo_core.generators.base import SplitGenerator
from ilo_core.generators.dcgan import DCGANGenerator
from ilo_core.generators.stylegan2 import StyleGAN2Generator
from ilo_core.memory import keep_freed_memory

SAFE_EXTRA_GLOBALS = (argparse.Namespace,)


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message says why in one line."""


def read_torch_checkpoint(path: str | Path) -> object:
    """torch.load with weights_only=True (plus argparse.Namespace) on CPU; CheckpointError if refused."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(list(SAFE_EXTRA_GLOBALS)):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        wanted = re.search(r"GLOBAL ([\w.]+)", str(err))
        if wanted:
            raise CheckpointError(f"{path.name} asks to load {wanted.group(1)}, which a checkpoint may not do: "
                                  f"refused, and nothing in it was run") from None
        raise CheckpointError(f"{path.name} is not a PyTorch checkpoint ({_first_line(err)})") from None
    except (RuntimeError, KeyError, EOFError, ValueError, zipfile.BadZipFile, AttributeError, TypeError) as err:
        raise CheckpointError(f"{path.name} is not a PyTorch checkpoint ({_first_line(err)})") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:160] if text else type(err).__name__


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA GPU is available")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}: use auto, cpu or cuda")
    return torch.device(device)


def load_generator(spec: str | Path = "default", device: str | torch.device = "cpu") -> SplitGenerator:
    """'default' -> the embedded DigiFace DCGAN; a path -> a StyleGAN-2 checkpoint
    (rosinality `.pt`, also `train.py` training checkpoints). Raises ValueError in one line.

    Also tunes malloc to keep freed memory (see `ilo_core.memory`): large generators page-fault
    less.
    """
    keep_freed_memory()
    device = resolve_device(device) if isinstance(device, str) else device
    if str(spec) == "default":
        return DCGANGenerator.load(device=device)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"generator checkpoint not found: {path}")
    checkpoint = read_torch_checkpoint(path)
    try:
        return StyleGAN2Generator.from_checkpoint(checkpoint).to(device)
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path.name} is not a usable rosinality StyleGAN-2 checkpoint: "
                              f"{_first_line(err)}") from None
