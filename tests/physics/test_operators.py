"""Forward operators: shapes, adjoints, determinism, PIL agreement, memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import FACES, ROOT
from ilo_core.physics.operators import (CompressedSensing, Denoising, Inpainting, RandomInpainting,
                                        SuperResolution, linear_adjoint)
from ilo_core.physics.problems import build_operator

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SIZE = 16


def make(name: str, seed: int = 0):
    return {
        "inpaint": lambda: Inpainting.box(SIZE, 4, 4, 6, 6),
        "random-inpaint": lambda: RandomInpainting(SIZE, 0.3, seed),
        "super-resolution": lambda: SuperResolution(4, SIZE),
        "denoise": lambda: Denoising(25),
        "compressed-sensing": lambda: CompressedSensing((3, SIZE, SIZE), 0.2, seed),
    }[name]()


NAMES = ["inpaint", "random-inpaint", "super-resolution", "denoise", "compressed-sensing"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", NAMES)
def test_operator_maps_a_batch_and_renders_an_observation_image(name, device):
    op = make(name).to(device)
    x = torch.rand(2, 3, SIZE, SIZE, device=device) * 2 - 1
    y = op(x, torch.Generator(device=device).manual_seed(0))
    assert y.shape[0] == 2
    shown = op.observation_image(y)
    assert shown.shape == (2, 3, SIZE, SIZE)
    assert shown.min() >= -1 - 1e-6 and shown.max() <= 1 + 1e-6


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", NAMES)
def test_autograd_gradient_equals_the_adjoint(name, device):
    op = make(name).to(device)
    x = torch.randn(2, 3, SIZE, SIZE, device=device, dtype=torch.float32)
    y = torch.randn_like(op.A(x))
    via_autograd = linear_adjoint(op.A, y, x.shape)
    assert torch.allclose(op.A_adjoint(y), via_autograd, atol=1e-5)
    # <A x, y> == <x, A^T y>
    assert torch.allclose((op.A(x) * y).sum(), (x * op.A_adjoint(y)).sum(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_the_same_seed_gives_the_same_operator_and_noise(name):
    x = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    a = make(name, seed=7)(x, torch.Generator().manual_seed(1))
    b = make(name, seed=7)(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_random_operators_differ_across_seeds():
    assert not torch.equal(RandomInpainting(SIZE, 0.3, 1).keep, RandomInpainting(SIZE, 0.3, 2).keep)
    assert not torch.equal(CompressedSensing((3, 8, 8), 0.3, 1).index, CompressedSensing((3, 8, 8), 0.3, 2).index)


def test_compressed_sensing_equals_its_dense_partial_circulant_matrix():
    op = CompressedSensing((3, 8, 8), 0.25, seed=3)
    dense = op.dense_matrix()
    assert dense.shape == (op.m, 192)
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(op.A(x), x.reshape(2, -1) @ dense.T, atol=1e-5)
    # the rows are shifts of one filter times the signs: circulant structure
    filt = dense / op.signs[None, :]
    assert torch.allclose(filt[0].roll(int(op.index[1] - op.index[0])), filt[1], atol=1e-6)


def test_compressed_sensing_at_1024px_uses_under_1gb_extra_memory():
    code = textwrap.dedent("""
        import resource, torch
        torch.set_num_threads(2)
        x = torch.randn(1, 3, 1024, 1024)
        from ilo_core.physics.operators import CompressedSensing
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        op = CompressedSensing((3, 1024, 1024), 0.1, seed=0)
        y = op.A(x)
        assert y.shape == (1, 314573)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    extra_mb = float(out.stdout.strip().splitlines()[-1])
    assert extra_mb < 1024


@pytest.mark.parametrize("factor", [2, 4, 8])
@pytest.mark.parametrize("face", ["astronaut_face.png", "grace_hopper_face.png"])
def test_bicubic_downsampling_agrees_with_pil_to_50db(face, factor):
    img = np.asarray(Image.open(FACES / face).convert("RGB"))
    x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    ours = ((SuperResolution(factor, img.shape[0]).A(x)[0].permute(1, 2, 0) + 1) * 127.5).clamp(0, 255).numpy()
    size = img.shape[0] // factor
    pil = np.asarray(Image.fromarray(img).resize((size, size), Image.BICUBIC)).astype(np.float64)
    psnr = 10 * np.log10(255**2 / ((ours - pil) ** 2).mean())
    assert psnr > 50


def test_random_inpainting_keeps_the_asked_fraction_down_to_one_percent():
    op = RandomInpainting(64, 0.01, seed=0)
    assert op.keep.sum() == round(0.01 * 64 * 64)


def test_denoising_observation_is_clipped_and_has_the_asked_sigma():
    op = Denoising(25)
    x = torch.zeros(1, 3, 64, 64)
    y = op(x, torch.Generator().manual_seed(0))
    assert y.min() >= -1 and y.max() <= 1
    assert abs(float(y.std()) - 25 * 2 / 255) < 0.01
    sna = x + op.noise_model.sample(x, torch.Generator().manual_seed(1))
    assert abs(float(sna.std()) - 25 * 2 / 255) < 0.01


def test_the_noise_model_draws_only_from_the_generator_it_is_given():
    model, x = Denoising(30).noise_model, torch.zeros(1, 3, 16, 16)
    a = model.sample(x, torch.Generator().manual_seed(5))
    torch.manual_seed(123)  # the global generator plays no part
    b = model.sample(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, model.sample(x, torch.Generator().manual_seed(6)))


def test_inpainting_fills_holes_with_the_current_generation_for_lpips():
    op = Inpainting.box(8, 2, 2, 3, 3)
    y, current = torch.ones(1, 3, 8, 8), -torch.ones(1, 3, 8, 8)
    view = op.perceptual_view(y, current)
    assert view[0, 0, 3, 3] == -1 and view[0, 0, 0, 0] == 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(task="inpaint"), "needs a mask"),
    (dict(task="inpaint", mask=torch.zeros(16, 16, dtype=torch.bool)), "mask is empty"),
    (dict(task="inpaint", mask=torch.ones(16, 16, dtype=torch.bool)), "hides every pixel"),
    (dict(task="super-resolution", factor=3), "does not divide"),
    (dict(task="random-inpaint", observed=0.0), "observed fraction"),
    (dict(task="compressed-sensing", measurements=1.5), "measurement fraction"),
    (dict(task="denoise", sigma=-1), "sigma"),
    (dict(task="deblur"), "unknown task"),
])
def test_bad_operator_parameters_raise_clear_errors(kwargs, message):
    task = kwargs.pop("task")
    with pytest.raises(ValueError, match=message):
        build_operator(task, 16, **kwargs)
