"""The engine's own generator file: one `.safetensors` with everything a StyleGAN-2 needs.

Written by `python -m ilo_core convert IN OUT.safetensors` from any supported checkpoint:
the rosinality-named weights and noise buffers, `latent_avg`, the Gaussianization fit
(so loading skips it), and metadata: the format, the resolution, the model config (JSON),
the source file's format, name and sha256. Safetensors holds no code, so loading it runs
none, and it loads faster than the source (no unpickling, no fit).
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save
from torch import Tensor

from ilo_core.atomic import write_bytes
from ilo_core.generators.stylegan2 import StyleGAN2Generator

FORMAT = "ilo-studio-stylegan2/1"


def save_converted(generator: StyleGAN2Generator, path: str | Path, source: dict[str, str]) -> None:
    """Write `generator` (its weights, latent_avg, fit and config) to `path`, whole or not at all."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    tensors["latent_avg"] = generator.latent_avg.detach().cpu().contiguous()
    tensors["gaussian_fit.mean"] = generator.gauss_mean.detach().cpu().contiguous()
    tensors["gaussian_fit.std"] = generator.gauss_std.detach().cpu().contiguous()
    meta = {"format": FORMAT, "kind": generator.kind, "resolution": str(generator.resolution),
            "config": json.dumps(generator.config), **{f"source_{k}": str(v) for k, v in source.items()}}
    write_bytes(save(tensors, metadata=meta), path)


def metadata(path: str | Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def read_converted(path: str | Path) -> tuple[dict[str, Tensor], Tensor, dict[str, Tensor], dict]:
    """(rosinality state dict, latent_avg, Gaussianization fit {"mean", "std"}, config) of a
    converted file. ValueError if it is not one."""
    path = Path(path)
    try:
        meta = metadata(path)
    except Exception as err:  # safetensors raises its own error types for a damaged header
        raise ValueError(f"{path.name} is not a readable .safetensors file ({type(err).__name__})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path.name} is a .safetensors file but not an ILO Studio generator "
                         f"(format {meta.get('format')!r}); convert a checkpoint with `python -m ilo_core convert`")
    missing = [k for k in ("gaussian_fit.mean", "gaussian_fit.std", "latent_avg") if k not in _keys(path)]
    if missing or "config" not in meta:
        raise ValueError(f"{path.name} is an incomplete ILO Studio generator file (no {', '.join(missing or ['config'])}): "
                         f"convert the checkpoint again")
    try:
        config = json.loads(meta["config"])
    except ValueError:
        raise ValueError(f"{path.name} has an unreadable config (not JSON): convert the checkpoint again") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path.name} has a config that is a {type(config).__name__}, not a mapping")
    tensors = load_file(str(path))
    fit = {"mean": tensors.pop("gaussian_fit.mean"), "std": tensors.pop("gaussian_fit.std")}
    latent_avg = tensors.pop("latent_avg")
    return tensors, latent_avg, fit, config


def _keys(path: Path) -> set[str]:
    with safe_open(str(path), framework="pt") as f:
        return set(f.keys())
