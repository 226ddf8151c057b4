"""Every StyleGAN-2 checkpoint people have loads without running its code: NVlabs pickles
(golden against NVlabs' own renders), rosinality files, the engine's converted
.safetensors; anything else is refused in one line."""

from __future__ import annotations

import argparse
import json
import os
import shutil

import pytest
import torch

from conftest import REFERENCE

ADA = REFERENCE / "ada_g64.pkl"


@pytest.fixture(scope="module")
def ada(tmp_path_factory):
    from ilo_core.checkpoints.loading import load_stylegan2

    return load_stylegan2(ADA, cache_dir=tmp_path_factory.mktemp("fit"))


@pytest.fixture(scope="module")
def ada_reference():
    return torch.load(REFERENCE / "ada_g64_reference.pt", weights_only=True)


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def test_nvlabs_pickle_renders_equal_nvlabs_fp32_renders(ada, ada_reference):
    ref = ada_reference
    with torch.no_grad():
        zeros = [torch.zeros_like(n) for n in ada.stored_noises(2)]
        w = ada.mapping(ref["z"])[:, None].expand(-1, ada.n_latent, -1)
        errors = {
            "img_ws_fp32": max_abs(ada.synthesize(ref["ws"], ada.stored_noises(2)), ref["img_ws_fp32"]),
            "img_none_fp32": max_abs(ada.synthesize(ref["ws"], zeros), ref["img_none_fp32"]),
            "img_trunc_fp32": max_abs(ada.synthesize(ref["ws_trunc"], ada.stored_noises(2)), ref["img_trunc_fp32"]),
            "ws_z": max_abs(w, ref["ws_z"]),
            "img_z_fp32": max_abs(ada.forward_z(ref["z"]), ref["img_z_fp32"]),
            "img_trunc_fp32 (from z)": max_abs(ada.forward_z(ref["z"], truncation=ref["truncation_psi"]),
                                               ref["img_trunc_fp32"]),
            "img_z_row0_batch1_fp32": max_abs(ada.forward_z(ref["z"][:1]), ref["img_z_row0_batch1_fp32"]),
        }
    print("golden max abs:", {k: f"{v:.1e}" for k, v in errors.items()})
    assert max(errors.values()) < 1e-4, errors
    assert ada.resolution == ref["resolution"] and ada.n_latent == ref["num_ws"]


def test_each_synthesis_block_equals_nvlabs_block_output(ada, ada_reference):
    ref = ada_reference
    variables = {"wplus": ref["ws"], **{f"noise_{i}": n for i, n in enumerate(ada.stored_noises(2))}}
    with torch.no_grad():
        for k in range(ada.num_layers):
            state = ada.state_at(k + 1, variables)
            res = 4 * 2**k
            assert max_abs(state["skip"], ref[f"block{res}.img_fp32"].float()) < 1e-4, res
            assert max_abs(state["features"][0], ref[f"block{res}.x_fp32"].float()) < 1e-4, res


def test_the_conv_clamp_is_honoured(ada, ada_reference):
    from ilo_core.generators import StyleGAN2Generator

    unclamped = StyleGAN2Generator(**{**ada.config, "conv_clamp": None})
    unclamped.load_state_dict(ada.state_dict())
    unclamped.freeze()
    with torch.no_grad():
        moved = max_abs(unclamped.synthesize(ada_reference["ws"], ada.stored_noises(2)), ada_reference["img_ws_fp32"])
    assert moved > 0.1  # the reference says 0.26
    assert ada.config["conv_clamp"] == 256 and ada.config["channels"] == {4: 96, 8: 96, 16: 96, 32: 96, 64: 64}


def test_a_pickle_with_one_extra_forbidden_global_is_refused_and_nothing_runs(tmp_path):
    from ilo_core.checkpoints import load_generator

    marker = tmp_path / "marker"
    data = ADA.read_bytes()
    assert data.endswith(b".")
    name = str(marker).encode()
    extra = (b"\x8c\x04evil" + b"\x8c\x02io\x8c\x04open\x93" + b"\x8c" + bytes([len(name)]) + name + b"\x8c\x01w"
             + b"\x86R" + b"s.")  # top dict["evil"] = io.open(marker, "w")
    (tmp_path / "evil.pkl").write_bytes(data[:-1] + extra)
    with pytest.raises(ValueError, match="evil.pkl asks to load io.open") as err:
        load_generator(tmp_path / "evil.pkl")
    assert "\n" not in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("change, message", [
    (lambda g: g.state.__setitem__("c_dim", 10), "conditional model"),
    (lambda g: g.module("synthesis").state["_modules"].__setitem__(
        "input", type(g)(class_name="SynthesisInput")), "StyleGAN3"),
    (lambda g: g.module("synthesis").module("b16").state.__setitem__("architecture", "resnet"), "only 'skip'"),
    (lambda g: setattr(g, "class_name", "Discriminator"), "not a StyleGAN-2 Generator"),
])
def test_unsupported_networks_are_refused_in_one_line(change, message):
    from ilo_core.checkpoints.nvlabs import UnsupportedNetwork, to_rosinality
    from ilo_core.checkpoints.safe_pickle import load_records

    records = load_records(ADA)
    change(records["G_ema"])
    with pytest.raises(UnsupportedNetwork, match=message) as err:
        to_rosinality(records)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("value", [print, os.system, torch.nn.Linear(2, 2), argparse.Namespace(a=1)])
def test_the_restricted_unpickler_refuses_every_other_global(tmp_path, value):
    import pickle

    from ilo_core.checkpoints.safe_pickle import UnsafePickleError, load_records

    (tmp_path / "x.pkl").write_bytes(pickle.dumps(value))
    with pytest.raises(UnsafePickleError):
        load_records(tmp_path / "x.pkl")


def test_convert_round_trip_renders_identically_and_records_its_source(ada, tmp_path):
    import hashlib

    from ilo_core.checkpoints import load_generator
    from ilo_core.checkpoints.converted import metadata
    from ilo_core.checkpoints.loading import convert_checkpoint

    target = tmp_path / "ada.safetensors"
    convert_checkpoint(ADA, target)
    meta = metadata(target)
    assert meta["source_format"] == "nvlabs-pickle" and meta["resolution"] == "64"
    assert meta["source_sha256"] == hashlib.sha256(ADA.read_bytes()).hexdigest()
    assert json.loads(meta["config"])["conv_clamp"] == 256
    again = load_generator(target, reference=True)  # the plain model, as `ada` is
    v = ada.sample_variables(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(again.render(v), ada.render(v))
        assert (load_generator(target).render(v) - ada.render(v)).abs().max() < 1e-4  # accelerated
    assert torch.equal(again.gauss_mean, ada.gauss_mean) and torch.equal(again.latent_avg, ada.latent_avg)


def test_convert_of_a_rosinality_file_and_the_cli(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT
    from ilo_core.generators import StyleGAN2Generator

    g = StyleGAN2Generator(size=8, n_mlp=2)
    with torch.no_grad():
        for i, p in enumerate(g.parameters()):
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(i)) * 0.1)
    torch.save({"g_ema": g.state_dict(), "latent_avg": torch.zeros(512)}, tmp_path / "g.pt")
    out = subprocess.run([sys.executable, "-m", "ilo_core", "convert", str(tmp_path / "g.pt"),
                          str(tmp_path / "g.safetensors")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "rosinality, 8 px" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "ilo_core", "convert", str(tmp_path / "g.pt"), str(tmp_path / "g.bin")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error:") and "must end in .safetensors" in bad.stderr


def test_a_safetensors_file_that_is_not_a_generator_is_a_clear_error(tmp_path):
    from safetensors.torch import save_file

    from ilo_core.checkpoints import load_generator

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not an ILO Studio generator"):
        load_generator(tmp_path / "other.safetensors")


def test_a_downloaded_name_loads_from_the_cache_and_is_converted_once(tmp_path, monkeypatch):
    from ilo_core.checkpoints.download import cached_path
    from ilo_core.checkpoints import load_generator

    monkeypatch.setenv("ILO_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="run `python -m ilo_core download afhqcat-512` first"):
        load_generator("afhqcat-512")
    path = cached_path("afhqcat-512")
    path.parent.mkdir(parents=True)
    shutil.copy(ADA, path)  # stands in for the real download
    first = load_generator("afhqcat-512")
    assert path.with_suffix(".safetensors").is_file()
    second = load_generator("afhqcat-512")
    v = first.sample_variables(1, torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(first.render(v), second.render(v))
