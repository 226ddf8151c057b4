"""Pack the golden reference data (made elsewhere with rosinality's and NVlabs' code) into
`tests/data/reference/`, small enough to ship with the repository, so that a fresh clone's
tests run against the same data as CI.

    python scripts/pack_test_reference.py ../shared/reference

- `rosinality_g64.pt` (91 MB: float32 weights on a coarse grid, at most 256 distinct values
  per large tensor) -> `rosinality_g64.codes.safetensors`: each such tensor as uint8 codes into
  its sorted table of values (bit-exact), the others as they are, `latent_avg` beside them.
  `tests/reference_data.py` rebuilds the rosinality `.pt` file from it.
- `ada_g64.pkl` (14 MB, an NVlabs network pickle that embeds code: it is never unpickled
  with a general unpickler) -> `ada_g64.pkl.gz`.
- The renders, key manifests and LPIPS images are copied as they are.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "reference"
COPIED = ["rosinality_g64_reference.pt", "ada_g64_reference.pt", "stylegan2_1024_config_f_keys.json",
          "stylegan2_256_cm2_keys.json", "stylegan2_64_cm1_keys.json", "lpips/ex_ref.png", "lpips/ex_p0.png",
          "lpips/ex_p1.png"]


def pack_rosinality(source: Path, target: Path) -> None:
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    tensors, metadata = {}, {"order": ""}
    order = []
    for key, value in checkpoint["g_ema"].items():
        order.append(key)
        table, codes = torch.unique(value, return_inverse=True)
        if value.numel() > 4096 and table.numel() <= 256:
            tensors[f"codes.{key}"] = codes.to(torch.uint8).contiguous()
            tensors[f"table.{key}"] = table.contiguous()
        else:
            tensors[f"plain.{key}"] = value.contiguous()
    tensors["latent_avg"] = checkpoint["latent_avg"].contiguous()
    metadata["order"] = "\n".join(order)
    metadata["source_sha256"] = hashlib.sha256(source.read_bytes()).hexdigest()
    save_file(tensors, str(target), metadata=metadata)


def main(source: str) -> None:
    src = Path(source)
    (OUT / "lpips").mkdir(parents=True, exist_ok=True)
    pack_rosinality(src / "rosinality_g64.pt", OUT / "rosinality_g64.codes.safetensors")
    with open(src / "ada_g64.pkl", "rb") as f, gzip.GzipFile(OUT / "ada_g64.pkl.gz", "wb", mtime=0) as g:
        shutil.copyfileobj(f, g)
    for name in COPIED:
        shutil.copyfile(src / name, OUT / name)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/reference")
