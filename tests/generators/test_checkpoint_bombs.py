"""Tiny hostile checkpoint files cannot make the loader build gigabytes: the architecture a
file describes is checked against limits and against its tensors' real sizes before any
module is built, compressed or over-long records are refused, and a refused file's peak
memory stays within 200 MB of a bare start (each load in its own process)."""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ilo_core.checkpoints.loading import CheckpointError, load_stylegan2

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import resource, sys
from ilo_core.checkpoints.loading import load_stylegan2
if sys.argv[1] != "bare":
    try:
        load_stylegan2(sys.argv[1], cache_dir=sys.argv[2])
        print("LOADED")
    except ValueError as err:
        print("REFUSED", str(err).replace(chr(10), " "))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def peak_mb(path: str, tmp_path: Path) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, path, str(tmp_path)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    return (lines[0] if len(lines) > 1 else ""), int(lines[-1])


def keys_of(size: int, n_mlp: int = 8, width: int = 4, style_dim: int = 4) -> dict[str, torch.Tensor]:
    """A rosinality state dict whose key names describe a `size` px generator with `n_mlp`
    mapping layers of `style_dim` (read from style.1's rows), every tensor a few values (a
    file of a few KB)."""
    tiny = torch.zeros(1, width, 1, 1, 1)
    state = {f"style.{i}.weight": torch.zeros(width, 1) for i in range(1, n_mlp + 1)}
    state["style.1.weight"] = torch.zeros(style_dim, 1)
    state["input.input"] = torch.zeros(1, width, 4, 4)
    blocks = size.bit_length() - 3
    for j in range(blocks):
        state[f"convs.{2 * j}.conv.weight"] = tiny
        state[f"convs.{2 * j + 1}.conv.weight"] = tiny
        state[f"to_rgbs.{j}.conv.weight"] = tiny
    return state


def write_converted(path: Path, config: dict) -> Path:
    """An engine .safetensors whose metadata describes `config`, with a few KB of tensors."""
    save_file({"latent_avg": torch.zeros(512), "gaussian_fit.mean": torch.zeros(512),
               "gaussian_fit.std": torch.ones(512), **{k: v.clone() for k, v in keys_of(64).items()}}, str(path),
              metadata={"format": "ilo-studio-stylegan2/1", "config": json.dumps(config)})
    return path


def deflate_bomb(path: Path, inflated: int = 300 << 20) -> Path:
    """A torch.save zip whose data.pkl record is deflated and padded with `inflated` bytes of
    zeros after the pickle: about 0.3 MB on disk, read whole (inflated) by torch.load."""
    torch.save({"g_ema": {"style.1.weight": torch.zeros(2, 2)}}, path)
    with zipfile.ZipFile(path) as source:
        records = [(info.filename, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w") as target:
        for name, data in records:
            if name.endswith("data.pkl"):
                info = zipfile.ZipInfo(name)
                info.compress_type = zipfile.ZIP_DEFLATED
                with target.open(info, "w", force_zip64=True) as f:
                    f.write(data)
                    block = bytes(1 << 20)
                    for _ in range(inflated >> 20):
                        f.write(block)
            else:
                target.writestr(name, data, compress_type=zipfile.ZIP_STORED)
    return path


CASES = {
    "16384 px in key names": (lambda p: torch.save({"g_ema": keys_of(16384)}, p), ".pt", "16384 px generator; the limit"),
    "2000 mapping layers of 512": (lambda p: torch.save({"g_ema": keys_of(64, n_mlp=2000, style_dim=512)}, p),
                                   ".pt", "2000 mapping layers"),
    "n_mlp 1e6 in metadata": (lambda p: write_converted(p, {"size": 64, "style_dim": 512, "n_mlp": 1000000}),
                              ".safetensors", "1000000 mapping layers"),
    "size 65536 in metadata": (lambda p: write_converted(p, {"size": 65536, "style_dim": 512, "n_mlp": 8}),
                               ".safetensors", "65536 px generator"),
    "a deflate bomb": (deflate_bomb, ".pt", "compressed record"),
    "a stride-0 view of 1 GB": (lambda p: torch.save({"g_ema": {**keys_of(64), "style.1.weight":
                                torch.zeros(1).expand(16384, 16384)}}, p), ".pt", "limit"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_tiny_hostile_checkpoint_is_refused_within_200_mb_of_a_bare_start(tmp_path, case):
    make, suffix, message = CASES[case]
    path = tmp_path / f"hostile{suffix}"
    make(path)
    assert path.stat().st_size < 2_000_000
    _, bare = peak_mb("bare", tmp_path)
    said, peak = peak_mb(str(path), tmp_path)
    print(f"{case}: {path.stat().st_size / 1e3:.0f} KB file, peak {peak} MB against a bare start's {bare} MB; {said}")
    assert said.startswith("REFUSED") and message in said
    assert peak - bare < 200


def test_a_record_longer_than_the_file_is_refused_without_allocating_it(tmp_path):
    path = tmp_path / "binbytes8.pkl"
    path.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 2**60) + b"abc.")
    with pytest.raises(CheckpointError, match="not a readable pickle.*cut short") as err:
        load_stylegan2(path)
    assert "\n" not in str(err.value)


def test_a_build_that_would_overwrite_a_records_method_is_refused(tmp_path):
    path = tmp_path / "build.pkl"
    meta = pickle.dumps({"type": "class", "class_name": "Generator", "state": {}}, protocol=4)[2:-1]  # no PROTO/STOP
    path.write_bytes(b"\x80\x04" + b"ctorch_utils.persistence\n_reconstruct_persistent_obj\n" + meta
                     + b"\x85R" + pickle.dumps({"module": 1}, protocol=4)[2:-1] + b"b.")
    with pytest.raises(CheckpointError, match="BUILD"):
        load_stylegan2(path)


def test_integer_or_non_finite_weights_are_refused_at_load(tmp_path, stylegan64_plain):
    from conftest import REFERENCE

    state = torch.load(REFERENCE / "rosinality_g64.pt", weights_only=True)
    for name, value in (("ints", lambda t: t.to(torch.int32)), ("nan", lambda t: t * float("nan"))):
        bad = dict(state["g_ema"])
        bad["style.1.weight"] = value(bad["style.1.weight"])
        path = tmp_path / f"{name}.pt"
        torch.save({"g_ema": bad, "latent_avg": state["latent_avg"]}, path)
        with pytest.raises(CheckpointError, match="int32 values|NaN or infinite"):
            load_stylegan2(path, cache_dir=tmp_path)


def test_a_legacy_torch_save_file_of_several_pickles_still_loads(tmp_path, stylegan64_plain):
    """The walk to the pickle's end mark does not refuse a pre-1.6 torch.save file, whose
    first pickle (the magic number) is followed by others."""
    from conftest import REFERENCE

    state = torch.load(REFERENCE / "rosinality_g64.pt", weights_only=True)
    torch.save(state, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert load_stylegan2(tmp_path / "legacy.pt", cache_dir=tmp_path).identity == stylegan64_plain.identity
