"""Shared fixtures: the embedded generator, the reference StyleGAN-2, example faces."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ILO_SHARED", ROOT.parent / "shared"))
REFERENCE = SHARED / "reference"
FACES = ROOT / "assets" / "faces"

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def dcgan():
    """The embedded DCGAN as the engine uses it (accelerated)."""
    from ilo_core.generators import load_generator

    return load_generator("default", reference=False)


@pytest.fixture(scope="session")
def dcgan_plain():
    """The plain DCGAN model (the tutorial's modules)."""
    from ilo_core.generators import DCGANGenerator

    return DCGANGenerator.load()


def _needs_reference() -> None:
    if not (REFERENCE / "rosinality_g64.pt").is_file():
        pytest.skip(f"needs the shared reference data in {REFERENCE} (set ILO_SHARED)")


@pytest.fixture(scope="session")
def stylegan64_plain(tmp_path_factory):
    """rosinality's 64 px StyleGAN-2 as the plain model (per-sample modulated weights)."""
    from ilo_core.generators.loading import load_stylegan2

    _needs_reference()
    return load_stylegan2(REFERENCE / "rosinality_g64.pt", cache_dir=tmp_path_factory.mktemp("fit"))


@pytest.fixture(scope="session")
def stylegan64(tmp_path_factory):
    """The same weights as the engine uses them (accelerated)."""
    from ilo_core.accelerate import accelerate
    from ilo_core.generators.loading import load_stylegan2

    _needs_reference()
    gen = load_stylegan2(REFERENCE / "rosinality_g64.pt", cache_dir=tmp_path_factory.mktemp("fit"))
    return accelerate(gen, reference=False)


@pytest.fixture(scope="session")
def reference_renders():
    return torch.load(REFERENCE / "rosinality_g64_reference.pt", weights_only=True)


@pytest.fixture(scope="session")
def faces64():
    from ilo_core.images import load_image

    return [load_image(FACES / name, 64) for name in ("astronaut_face.png", "grace_hopper_face.png")]
