"""Saved results name the generator that made them and are checked before they are rendered:
another generator's weights are refused in a sentence naming both, old files load with a
warning, and a small file cannot ask for thousands of rows, wrong shapes or NaN."""

from __future__ import annotations

import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file

from ilo_core.engine.methods import solve
from ilo_core.engine.presets import default_config
from ilo_core.engine.reconstruction import MAX_ROWS, Reconstruction
from ilo_core.frontends.page import InputError, load_saved
from ilo_core.generators.dcgan import ASSET, DCGANGenerator
from ilo_core.physics.problems import simulate


@pytest.fixture(scope="module")
def saved(dcgan, faces64, tmp_path_factory):
    """A finished 2-start solve's result file (path, the Reconstruction)."""
    problem = simulate("super-resolution", faces64[0], factor=4)
    config = default_config(dcgan, "super-resolution", steps=[3, 3], preview_every=10**6)
    result = solve(dcgan, problem.operator, problem.observation, config).best[0]
    path = tmp_path_factory.mktemp("saved") / "result.safetensors"
    result.save(path)
    return path, result


def rewrite(path, target, tensors=None, meta=None):
    """A copy of a result file with some tensors or metadata changed."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata())
    data = load_file(str(path))
    data.update(tensors or {})
    metadata.update(meta or {})
    save_file(data, str(target), metadata={k: v for k, v in metadata.items() if v is not None})
    return target


def test_the_same_weights_have_the_same_identity_in_every_build_and_any_change_moves_it(dcgan, dcgan_plain):
    assert len(dcgan.identity) == 16 and dcgan.identity == dcgan_plain.identity == DCGANGenerator.load().identity
    weights = load_file(str(ASSET))
    first = next(k for k, v in weights.items() if v.is_floating_point())
    weights[first] = weights[first] + 1e-3
    assert DCGANGenerator(weights).identity != dcgan.identity


def test_a_result_renders_only_with_the_generator_that_made_it(dcgan, saved):
    path, result = saved
    loaded = Reconstruction.load(path)
    assert loaded.generator_id == dcgan.identity
    assert torch.allclose(loaded.render(dcgan), result.image, atol=1e-5)
    weights = load_file(str(ASSET))
    first = next(k for k, v in weights.items() if v.is_floating_point())
    weights[first] = weights[first] * 1.01
    other = DCGANGenerator(weights)
    with pytest.raises(ValueError, match=f"weights {dcgan.identity}.*weights {other.identity}"):
        loaded.render(other)
    with pytest.raises(InputError, match="another dcgan 64 px generator"):
        load_saved(path, other)


def test_a_result_file_from_before_the_identity_loads_with_a_warning(dcgan, saved, tmp_path):
    old = rewrite(saved[0], tmp_path / "old.safetensors", meta={"generator_id": None})
    with pytest.warns(UserWarning, match="does not say which generator made it"):
        Reconstruction.load(old).render(dcgan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image, note = load_saved(old, dcgan)
    assert image.shape == (64, 64, 3) and "does not say which generator" in note


@pytest.mark.parametrize("change, message", [
    ("rows", f"1 to {MAX_ROWS}"),
    ("shape", "per row"),
    ("nan", "NaN or infinite"),
    ("split", "is not one of the generator's"),
    ("image", "not a finite"),
])
def test_a_result_file_that_does_not_fit_the_generator_is_refused_before_rendering(dcgan, saved, tmp_path,
                                                                                     change, message):
    path, result = saved
    tensors, meta = {}, {}
    latent = result.variables["latent"]
    if change == "rows":
        tensors = {"variables.latent": latent.repeat(2000, 1)}
        tensors.update({f"state.{k}": v.repeat(2000, *[1] * (v.ndim - 1)) for k, v in result.state.items()})
    elif change == "shape":
        tensors = {"variables.latent": torch.zeros(latent.shape[0], latent.shape[1] + 5)}
    elif change == "nan":
        tensors = {"variables.latent": torch.full_like(latent, float("nan"))}
    elif change == "split":
        meta = {"split": "99"}
    elif change == "image":
        tensors = {"image": torch.zeros(1, 3, 640, 640)}
    bad = rewrite(path, tmp_path / "bad.safetensors", tensors, meta)
    with pytest.raises(InputError, match=message):
        load_saved(bad, dcgan)


def test_a_2000_row_result_through_the_page_is_refused_without_rendering(served_app, saved, tmp_path):
    from gradio_client import Client, handle_file

    from conftest import rss_mb

    path, result = saved
    tensors = {"variables.latent": result.variables["latent"].repeat(2000, 1)}
    tensors.update({f"state.{k}": v.repeat(2000, *[1] * (v.ndim - 1)) for k, v in result.state.items()})
    bad = rewrite(path, tmp_path / "rows.safetensors", tensors)
    client = Client(served_app, verbose=False)
    before = rss_mb()
    image, note = client.predict(path=handle_file(str(bad)), api_name="/load_result")
    grown = rss_mb() - before
    print(f"2000-row result: server RSS grew {grown:.1f} MB")
    assert "cannot be loaded" in note and "rows" in note
    assert grown < 100
