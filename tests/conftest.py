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
    from ilo_core.generators import DCGANGenerator

    return DCGANGenerator.load()


@pytest.fixture(scope="session")
def stylegan64(tmp_path_factory):
    from ilo_core.generators import StyleGAN2Generator

    return StyleGAN2Generator.load(REFERENCE / "rosinality_g64.pt", cache_dir=tmp_path_factory.mktemp("fit"))


@pytest.fixture(scope="session")
def reference_renders():
    return torch.load(REFERENCE / "rosinality_g64_reference.pt", weights_only=True)


@pytest.fixture(scope="session")
def faces64():
    from ilo_core.images import load_image

    return [load_image(FACES / name, 64) for name in ("astronaut_face.png", "grace_hopper_face.png")]
