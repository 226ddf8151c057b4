"""Reading generator checkpoints safely, and `load_generator` (format detection by content).

Formats, told apart by their first bytes, never by the file name:
- rosinality `.pt` (`{"g_ema", "latent_avg"}`, also `train.py` snapshots with "g", "d",
  optimizer states and "args"): read with `torch.load(weights_only=True)`, which rebuilds
  tensors and plain containers only, plus `argparse.Namespace` for "args";
- NVlabs `stylegan2-ada-pytorch` network pickles: read by `safe_pickle` (the embedded
  source is never run) and mapped by `nvlabs`;
- the engine's own `.safetensors` made by `python -m ilo_core convert` (`converted`).

Building a StyleGAN-2 also fits its Gaussianization (`gaussian_fit`, cached on disk by
weight hash under `$ILO_CACHE`); `load_generator` then applies `ilo_core.accelerate`
(unless the reference switch is set).

Nothing in a checkpoint is ever executed; anything else a file asks for is refused with one
line that names it.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import re
import struct
import warnings
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import Tensor

from ilo_core.accelerate import accelerate
from ilo_core.atomic import regular_file, write_bytes
from ilo_core.checkpoints import converted, nvlabs
from ilo_core.checkpoints.download import KNOWN, cache_root, cached_path, sha256_of
from ilo_core.checkpoints.safe_pickle import UnsafePickleError, load_records
from ilo_core.generators.base import SplitGenerator
from ilo_core.generators.dcgan import DCGANGenerator
from ilo_core.generators.stylegan2 import StyleGAN2Generator, check_against_tensors, check_config, infer_config

SAFE_EXTRA_GLOBALS = (argparse.Namespace,)
ZIP_MAGIC, SAFETENSORS_OPEN = b"PK\x03\x04", b"{"
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the first object of a pre-1.6 torch.save file


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message says why in one line."""


def check_zip_records(path: Path) -> None:
    """CheckpointError unless every record of a zip-format torch file is stored as torch.save
    stores it (uncompressed) and within the file's size: a small file cannot inflate."""
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(f"{path.name} is not a readable PyTorch checkpoint ({_first_line(err)})") from None
    size = path.stat().st_size
    for record in records:
        if record.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(f"{path.name} has a compressed record ({record.filename}); torch.save stores "
                                  f"records uncompressed: refused, nothing was inflated")
        if record.file_size > size:
            raise CheckpointError(f"{path.name} has a record ({record.filename}) of {record.file_size} bytes, "
                                  f"more than the whole file's {size}: refused")


def read_torch_checkpoint(path: str | Path) -> object:
    """torch.load with weights_only=True (plus argparse.Namespace) on CPU; CheckpointError if refused."""
    path = Path(path)
    if checkpoint_format(path) == "torch":
        with open(path, "rb") as f:
            zipped = f.read(4) == ZIP_MAGIC
        if zipped:
            check_zip_records(path)
    try:
        with torch.serialization.safe_globals(list(SAFE_EXTRA_GLOBALS)), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's note on pickle protocols
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        wanted = re.search(r"GLOBAL ([\w.]+)", str(err))
        if wanted:
            raise CheckpointError(f"{path.name} asks to load {wanted.group(1)}, which a checkpoint may not do: "
                                  f"refused, and nothing in it was run") from None
        raise CheckpointError(f"{path.name} is not a PyTorch checkpoint ({_first_line(err)})") from None
    except (RuntimeError, KeyError, EOFError, ValueError, zipfile.BadZipFile, AttributeError, TypeError,
            MemoryError, OverflowError) as err:
        raise CheckpointError(f"{path.name} is not a PyTorch checkpoint ({_first_line(err)})") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:160] if text else type(err).__name__


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA GPU is available")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}: use auto, cpu or cuda")
    return torch.device(device)


def checkpoint_format(path: Path) -> str:
    """"torch" (zip or legacy torch.save), "pickle" (a plain pickle: NVlabs), "safetensors" or "unknown"."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(ZIP_MAGIC):
        return "torch"
    if len(head) >= 9 and head[8:9] == SAFETENSORS_OPEN and struct.unpack("<Q", head[:8])[0] < (1 << 30):
        return "safetensors"
    if head[:1] == b"\x80":
        return "pickle"
    return "unknown"


def read_generator_file(path: Path) -> tuple[str, dict[str, torch.Tensor], torch.Tensor | None, dict]:
    """(source format, rosinality state dict, latent_avg, extra config) of a StyleGAN-2 file."""
    fmt = checkpoint_format(path)
    if fmt == "pickle":
        try:
            records = load_records(path)
        except UnsafePickleError as err:
            raise CheckpointError(f"{path.name} asks to load {err}, which a checkpoint may not do: "
                                  f"refused, and nothing in it was run") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
                MemoryError, OverflowError, RecursionError) as err:
            raise CheckpointError(f"{path.name} is not a readable pickle ({_first_line(err)})") from None
        if records != TORCH_LEGACY_MAGIC:
            try:
                state, latent_avg, config = nvlabs.to_rosinality(records)
            except nvlabs.UnsupportedNetwork as err:
                raise CheckpointError(f"{path.name} cannot be used: {err}") from None
            return "nvlabs-pickle", state, latent_avg, config
        fmt = "torch"
    if fmt == "torch":
        checkpoint = read_torch_checkpoint(path)
        if not isinstance(checkpoint, dict):
            raise CheckpointError(f"{path.name} holds a {type(checkpoint).__name__}, not a checkpoint dict")
        state = checkpoint.get("g_ema", checkpoint)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"{path.name} has no rosinality 'g_ema' state dict")
        return "rosinality", state, checkpoint.get("latent_avg"), {}
    raise CheckpointError(f"{path.name} is not a generator checkpoint (not a PyTorch file, an NVlabs pickle "
                          f"or a converted .safetensors)")


def gaussian_fit(generator: StyleGAN2Generator, samples: int = 10_000,
                 cache_dir: str | Path | None = None) -> dict[str, Tensor]:
    """{"mean", "std"} [style_dim] of leaky_relu(mapping(z), 5) over `samples` seeded z, per
    dimension; cached in `cache_dir` (default $ILO_CACHE) by the mapping network's weight hash."""
    digest = hashlib.sha256()
    for k, v in generator.style.state_dict().items():
        digest.update(k.encode())
        digest.update(v.detach().cpu().contiguous().numpy().tobytes())
    cache_dir = Path(cache_dir) if cache_dir else cache_root()
    cache = cache_dir / f"gaussian_fit_{digest.hexdigest()[:20]}_{samples}.safetensors"
    if cache.exists():
        return load_file(str(cache))
    z = torch.randn(samples, generator.style_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        v = F.leaky_relu(generator.style(z.to(generator.device)), 5.0).cpu()
    fit = {"mean": v.mean(0), "std": v.std(0)}
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        write_bytes(save(fit), cache)
    except OSError:
        pass  # a read-only home only costs the refit next time
    return fit


def check_tensors(state_dict: dict[str, object]) -> None:
    """ValueError unless every entry is a finite floating-point tensor whose data holds all its
    elements (a stride-0 view of a few bytes would be materialised to its full size)."""
    for key, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"its {key} is a {type(tensor).__name__}, not a tensor")
        if not tensor.is_floating_point():
            raise ValueError(f"its {key} holds {tensor.dtype} values; generator weights are floating point")
        if tensor.numel() and (0 in tensor.stride() and tensor.numel() > 1
                               or tensor.untyped_storage().nbytes() < tensor.numel() * tensor.element_size()):
            raise ValueError(f"its {key} claims {tensor.numel()} values but its data holds fewer (a repeated view)")
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"its {key} has NaN or infinite values")


def build_stylegan2(state_dict: dict[str, Tensor], latent_avg: Tensor | None = None, *,
                    fit: dict[str, Tensor] | None = None, fit_samples: int = 10_000,
                    cache_dir: str | Path | None = None, **config) -> StyleGAN2Generator:
    """A frozen plain StyleGAN2Generator on CPU from a rosinality `g_ema` state dict (strict):
    size, channels and n_mlp are read from it, `config` adds what it cannot tell (e.g.
    conv_clamp); `fit` ({"mean", "std"}) skips fitting the Gaussianization."""
    if {"size", "style_dim", "n_mlp"} <= config.keys():
        check_config(config)  # a file's own description, before its tensors are read
    config = check_config({**infer_config(state_dict), **config})
    check_tensors(state_dict if latent_avg is None else {**state_dict, "latent_avg": latent_avg})
    if latent_avg is not None and latent_avg.numel() != config["style_dim"]:
        raise ValueError(f"its latent_avg has {latent_avg.numel()} values, not {config['style_dim']}")
    check_against_tensors(config, state_dict)  # before anything is built
    gen = StyleGAN2Generator(**config)
    gen.load_state_dict(state_dict)  # names and shapes were checked above
    gen.freeze()
    if latent_avg is not None:
        gen.latent_avg.copy_(latent_avg.reshape(-1).float())
    fit = fit if fit is not None else gaussian_fit(gen, fit_samples, cache_dir)
    gen.gauss_mean.copy_(fit["mean"])
    gen.gauss_std.copy_(fit["std"])
    return gen


def _load_with_source(path: Path, **kwargs) -> tuple[StyleGAN2Generator, str]:
    """(plain generator, source format name) of any supported StyleGAN-2 file."""
    if checkpoint_format(path) == "safetensors":
        state, latent_avg, fit, config = converted.read_converted(path)
        source, name = "ilo-studio", "converted"
    else:
        source, state, latent_avg, config = read_generator_file(path)
        fit, name = None, "rosinality" if source == "rosinality" else "NVlabs"
    try:
        if not isinstance(config, dict):
            raise ValueError(f"its config is a {type(config).__name__}, not a mapping")
        return build_stylegan2(state, latent_avg, fit=fit, **config, **kwargs), source
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path.name} is not a usable {name} StyleGAN-2 checkpoint: {_first_line(err)}") from None


def load_stylegan2(path: str | Path, **kwargs) -> StyleGAN2Generator:
    """Any supported StyleGAN-2 file -> a frozen plain StyleGAN2Generator on CPU (see the module
    notes; `load_generator` also accelerates it). kwargs: fit_samples, cache_dir."""
    return _load_with_source(Path(path), **kwargs)[0]


def convert_checkpoint(source: str | Path, target: str | Path) -> dict[str, str]:
    """Any supported StyleGAN-2 checkpoint -> the engine's .safetensors (see `converted`); returns its metadata."""
    source, target = Path(source), Path(target)
    if target.suffix.lower() != ".safetensors":
        raise ValueError(f"{target.name}: the converted file's name must end in .safetensors")
    regular_file(source, "checkpoint file")
    generator, fmt = _load_with_source(source)
    converted.save_converted(generator, target, {"format": fmt, "name": source.name, "sha256": sha256_of(source)})
    return converted.metadata(target)


def load_named(name: str) -> StyleGAN2Generator:
    """A checkpoint of `download.KNOWN` from the cache: its converted .safetensors when there is
    one (made on the first load), else the downloaded pickle."""
    pickle_path = cached_path(name)
    fast = pickle_path.with_suffix(".safetensors")
    if fast.is_file():
        return load_stylegan2(fast)
    if not pickle_path.is_file():
        raise ValueError(f"{name} is not downloaded yet: run `python -m ilo_core download {name}` first")
    generator = load_stylegan2(pickle_path)
    try:
        converted.save_converted(generator, fast, {"format": "nvlabs-pickle", "name": pickle_path.name})
    except OSError:
        pass  # a read-only cache only costs the slower load next time
    return generator


def load_generator(spec: str | Path = "default", device: str | torch.device = "cpu", *,
                   reference: bool | None = None) -> SplitGenerator:
    """'default' -> the embedded DigiFace DCGAN; a name of `ilo_core.checkpoints.download.KNOWN` (after
    `python -m ilo_core download NAME`); a path -> a StyleGAN-2 checkpoint in any supported
    format (see the module notes). Raises ValueError in one line.

    The generator is accelerated (`ilo_core.accelerate`) on CPU, then moved to `device`;
    `reference=True` (default: the ILO_REFERENCE switch) keeps the plain model.
    """
    device = resolve_device(device) if isinstance(device, str) else device
    if str(spec) == "default":
        generator: SplitGenerator = DCGANGenerator.load()
    elif str(spec) in KNOWN:
        generator = load_named(str(spec))
    else:
        path = Path(spec)
        if not path.exists():
            raise ValueError(f"generator checkpoint not found: {path} (or a name: {', '.join(KNOWN)})")
        regular_file(path, "checkpoint file")  # a folder, device or pipe is named as such, never read
        generator = load_stylegan2(path)
    return accelerate(generator, reference=reference).to(device)
