"""Generators: checkpoint compatibility, exact splits, read-only use from several threads."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from conftest import REFERENCE
from ilo_core.checkpoints import load_generator
from ilo_core.generators import StyleGAN2Generator


@pytest.fixture(params=["plain", "accelerated"])
def any_stylegan64(request):
    """The plain model and the accelerated one: both must render the golden images."""
    return request.getfixturevalue("stylegan64_plain" if request.param == "plain" else "stylegan64")


@pytest.mark.parametrize("manifest", ["stylegan2_64_cm1_keys.json", "stylegan2_256_cm2_keys.json",
                                      "stylegan2_1024_config_f_keys.json"])
def test_stylegan_state_dict_keys_and_shapes_equal_the_rosinality_manifest(manifest):
    spec = json.loads((REFERENCE / manifest).read_text())
    cfg = spec["config"]
    gen = StyleGAN2Generator(cfg["size"], style_dim=cfg["style_dim"], n_mlp=cfg["n_mlp"],
                             channel_multiplier=cfg["channel_multiplier"])
    assert [[k, list(v.shape)] for k, v in gen.state_dict().items()] == spec["keys"]
    assert gen.n_latent == spec["n_latent"]
    assert sum(p.numel() for p in gen.parameters()) == spec["num_params"]


def test_reference_checkpoint_renders_img_z_img_w_img_trunc_within_1e4(any_stylegan64, reference_renders):
    ref, stylegan64 = reference_renders, any_stylegan64
    with torch.no_grad():
        img_z = stylegan64.forward_z(ref["z"])
        noises = [ref[f"noise_w.{i}"] for i in range(stylegan64.num_noises)]
        img_w = stylegan64.synthesize(ref["wplus"], noises)
        img_trunc = stylegan64.forward_z(ref["z"], truncation=ref["truncation"])
    assert (img_z - ref["img_z"]).abs().max() < 1e-4
    assert (img_w - ref["img_w"]).abs().max() < 1e-4
    assert (img_trunc - ref["img_trunc"]).abs().max() < 1e-4


def test_reference_intermediate_skip_images_match(any_stylegan64, reference_renders):
    ref, stylegan64 = reference_renders, any_stylegan64
    w = stylegan64.mapping(ref["z"])[:, None].expand(-1, stylegan64.n_latent, -1)
    v = {"wplus": w, **{f"noise_{i}": n for i, n in enumerate(stylegan64.stored_noises(2))}}
    with torch.no_grad():
        assert (stylegan64.state_at(1, v)["skip"] - ref["inter_z.to_rgb1"]).abs().max() < 1e-4
        assert (stylegan64.state_at(3, v)["skip"] - ref["inter_z.to_rgbs.1"]).abs().max() < 1e-4


def test_truncated_bad_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"g_ema": {"style.1.weight": torch.zeros(4, 4)}}, bad)
    with pytest.raises(ValueError, match="not a usable rosinality StyleGAN-2 checkpoint"):
        load_generator(bad)


@pytest.mark.parametrize("which", ["dcgan", "stylegan64"])
def test_render_from_every_split_of_its_state_equals_the_full_render(which, request):
    gen = request.getfixturevalue(which)
    v = gen.sample_variables(2, torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = gen.render(v)
        assert full.shape == (2, 3, gen.resolution, gen.resolution)
        for k in range(gen.num_layers):
            assert (gen.render_from(k, gen.state_at(k, v), v) - full).abs().max() < 1e-5


def test_stylegan_state_carries_the_rgb_skip_image(stylegan64):
    v = stylegan64.sample_variables(1, torch.Generator().manual_seed(0))
    with torch.no_grad():
        state = stylegan64.state_at(2, v)
        assert set(state) == {"features", "skip"}
        dropped = stylegan64.render_from(2, {**state, "skip": torch.zeros_like(state["skip"])}, v)
        assert (dropped - stylegan64.render(v)).abs().max() > 1e-3  # the skip matters


def test_dcgan_renders_faces_in_the_unit_range(dcgan):
    img = dcgan.render(dcgan.sample_variables(4, torch.Generator().manual_seed(0)))
    assert img.shape == (4, 3, 64, 64)
    assert img.min() >= -1 and img.max() <= 1 and img.std() > 0.2


def test_generators_are_frozen(dcgan, dcgan_plain, stylegan64, stylegan64_plain):
    for gen in (dcgan, dcgan_plain, stylegan64, stylegan64_plain):
        assert not any(p.requires_grad for p in gen.parameters())


def test_gaussianization_inverts_the_leaky_relu(stylegan64):
    w = stylegan64.mapping(torch.randn(3, 512, generator=torch.Generator().manual_seed(1)))
    assert torch.allclose(stylegan64.latent_to_w(stylegan64.w_to_latent(w)), w, atol=1e-4)
    assert stylegan64.gauss_std.min() > 0


def test_two_threads_solving_on_one_generator_match_solving_alone(dcgan, faces64):
    from ilo_core.engine.config import SolverConfig
    from ilo_core.physics.operators import SuperResolution
    from ilo_core.engine.methods import solve

    before = {k: v.clone() for k, v in dcgan.state_dict().items()}
    op = SuperResolution(4, 64)
    cfg = SolverConfig(steps=(5, 5), lpips_weight=0.0, radii={"state": [None, 100.0]})
    ys = [op.A(f) for f in faces64]
    alone = [solve(dcgan, op, y, cfg).images() for y in ys]
    out: dict[int, torch.Tensor] = {}
    threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, solve(dcgan, op, ys[i], cfg).images()))
               for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        assert (out[i] - alone[i]).abs().max() < 1e-5
    assert all(torch.equal(before[k], v) for k, v in dcgan.state_dict().items())
