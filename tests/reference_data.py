"""The golden reference data shipped in `tests/data/reference/` (see its README), unpacked
once into a folder of the files the tests read: `rosinality_g64.pt` rebuilt bit-exactly from
its packed codes (`scripts/pack_test_reference.py`), `ada_g64.pkl` decompressed, the rest
as shipped. The folder is keyed by the packed files' hash and written whole or not at all."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

PACKED = Path(__file__).resolve().parent / "data" / "reference"


def _digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(PACKED.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(PACKED)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _unpack_rosinality(source: Path, target: Path) -> None:
    import torch
    from safetensors import safe_open

    with safe_open(str(source), framework="pt") as f:
        order = f.metadata()["order"].splitlines()
        state = {}
        for key in order:
            if f"plain.{key}" in f.keys():
                state[key] = f.get_tensor(f"plain.{key}")
            else:
                state[key] = f.get_tensor(f"table.{key}")[f.get_tensor(f"codes.{key}").long()]
        latent_avg = f.get_tensor("latent_avg")
    torch.save({"g_ema": state, "latent_avg": latent_avg}, target)


def reference_dir() -> Path:
    """The unpacked folder (made on the first call in a fresh temp folder; later calls reuse it)."""
    root = Path(os.environ.get("ILO_TEST_CACHE", Path(tempfile.gettempdir()) / "ilo_studio_test_reference"))
    folder = root / _digest()
    if (folder / "complete").is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=root, prefix="unpacking_"))
    for path in PACKED.rglob("*"):
        if path.is_file() and path.suffix not in (".gz",) and not path.name.endswith(".codes.safetensors"):
            (work / path.relative_to(PACKED)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, work / path.relative_to(PACKED))
    with gzip.open(PACKED / "ada_g64.pkl.gz", "rb") as f, open(work / "ada_g64.pkl", "wb") as g:
        shutil.copyfileobj(f, g)
    _unpack_rosinality(PACKED / "rosinality_g64.codes.safetensors", work / "rosinality_g64.pt")
    (work / "complete").write_text("")
    try:
        os.rename(work, folder)
    except OSError:  # another process unpacked it first
        shutil.rmtree(work, ignore_errors=True)
    return folder
