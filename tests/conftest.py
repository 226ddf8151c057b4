"""Shared fixtures: the embedded generator, the reference StyleGAN-2, example faces.

The golden reference data ships with the repository (`tests/data/reference/`, unpacked by
`reference_data.reference_dir`), so a fresh clone runs every test CI runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reference_data import reference_dir

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = reference_dir()
FACES = ROOT / "assets" / "faces"

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def dcgan():
    """The embedded DCGAN as the engine uses it (accelerated)."""
    from ilo_core.checkpoints import load_generator

    return load_generator("default", reference=False)


@pytest.fixture(scope="session")
def dcgan_plain():
    """The plain DCGAN model (the tutorial's modules)."""
    from ilo_core.generators import DCGANGenerator

    return DCGANGenerator.load()


@pytest.fixture(scope="session")
def stylegan64_plain(tmp_path_factory):
    """rosinality's 64 px StyleGAN-2 as the plain model (per-sample modulated weights)."""
    from ilo_core.checkpoints.loading import load_stylegan2

    return load_stylegan2(REFERENCE / "rosinality_g64.pt", cache_dir=tmp_path_factory.mktemp("fit"))


@pytest.fixture(scope="session")
def stylegan64(tmp_path_factory):
    """The same weights as the engine uses them (accelerated)."""
    from ilo_core.accelerate import accelerate
    from ilo_core.checkpoints.loading import load_stylegan2

    gen = load_stylegan2(REFERENCE / "rosinality_g64.pt", cache_dir=tmp_path_factory.mktemp("fit"))
    return accelerate(gen, reference=False)


@pytest.fixture(scope="session")
def reference_renders():
    return torch.load(REFERENCE / "rosinality_g64_reference.pt", weights_only=True)


@pytest.fixture(scope="session")
def faces64():
    from ilo_core.photo.images import load_image

    return [load_image(FACES / name, 64) for name in ("astronaut_face.png", "grace_hopper_face.png")]
