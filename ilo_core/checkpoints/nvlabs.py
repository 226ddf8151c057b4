"""NVlabs `stylegan2-ada-pytorch` network pickles -> the engine's StyleGAN-2, no code run.

`safe_pickle.load_records` turns the pickle into plain records; this module maps the
`G_ema` record's mapping and synthesis networks onto rosinality's names (which
`StyleGAN2Generator` uses) and reads what rosinality's layout cannot hold from the
records themselves:

- channels per resolution from the weights (NVlabs: min(channel_base / res, channel_max));
- `conv_clamp` of the layers (applied in fp32 too, as NVlabs does); fp16 layers are
  computed in fp32;
- `w_avg` as the truncation centre (`latent_avg`), `noise_const` buffers as the stored
  noise maps, `noise_strength` as the noise weights;
- the resample filter (rosinality's blur kernels are NVlabs' normalised filter times 4)
  and the gains (the mapping's lr multiplier; ToRGB's 1/sqrt(C) sits on NVlabs' styles and
  on rosinality's weight, the same product).

Refused with one line: StyleGAN3 (`-t`/`-r`) networks, conditional models (c_dim > 0),
synthesis architectures other than 'skip'.
"""

from __future__ import annotations

import math

from torch import Tensor

from ilo_core.checkpoints.safe_pickle import PersistentRecord

class UnsupportedNetwork(ValueError):
    """A network pickle this engine cannot use; the message says why in one line."""


def find_generator(records: object) -> PersistentRecord:
    """The `G_ema` network of an NVlabs snapshot dict (or the record itself)."""
    if isinstance(records, dict):
        for key in ("G_ema", "G"):
            if isinstance(records.get(key), PersistentRecord):
                return records[key]
        raise UnsupportedNetwork("it holds no 'G_ema' generator network")
    if isinstance(records, PersistentRecord):
        return records
    raise UnsupportedNetwork(f"it holds a {type(records).__name__}, not an NVlabs network snapshot")


def _attr(record: PersistentRecord, name: str, default: object = None) -> object:
    value = record.state.get(name, default)
    return value.item() if hasattr(value, "item") and not isinstance(value, Tensor) else value


def _module(record: PersistentRecord, name: str) -> PersistentRecord:
    child = record.module(name)
    if child is None:
        raise UnsupportedNetwork(f"{record.class_name} has no '{name}' network")
    return child


def _tensor(record: PersistentRecord, name: str) -> Tensor:
    tensors = record.tensors()
    if name not in tensors:
        raise UnsupportedNetwork(f"{record.class_name} has no tensor '{name}'")
    return tensors[name].detach().float().contiguous()


def _check_supported(g: PersistentRecord) -> None:
    if g.class_name != "Generator":
        raise UnsupportedNetwork(f"its generator is a {g.class_name}, not a StyleGAN-2 Generator")
    c_dim = int(_attr(g, "c_dim", 0) or 0)
    if c_dim > 0:
        raise UnsupportedNetwork(f"it is a conditional model (c_dim = {c_dim}); only unconditional ones are supported")
    synthesis = _module(g, "synthesis")
    children = {n: m for n, m in (synthesis.state.get("_modules") or {}).items() if isinstance(m, PersistentRecord)}
    if "input" in children or any(m.class_name == "SynthesisInput" for m in children.values()):
        raise UnsupportedNetwork("it is a StyleGAN3 (-t / -r) network; only StyleGAN-2 networks are supported")
    for name, block in children.items():
        architecture = _attr(block, "architecture", "skip")
        if architecture != "skip":
            raise UnsupportedNetwork(f"its synthesis block {name} has architecture '{architecture}'; "
                                     f"only 'skip' (the FFHQ configs) is supported")


def _styled(prefix: str, layer: PersistentRecord, out: dict[str, Tensor]) -> None:
    """A SynthesisLayer -> rosinality StyledConv keys."""
    out[f"{prefix}.conv.weight"] = _tensor(layer, "weight")[None]
    out[f"{prefix}.conv.modulation.weight"] = _tensor(_module(layer, "affine"), "weight")
    out[f"{prefix}.conv.modulation.bias"] = _tensor(_module(layer, "affine"), "bias")
    out[f"{prefix}.noise.weight"] = _tensor(layer, "noise_strength").reshape(1)
    out[f"{prefix}.activate.bias"] = _tensor(layer, "bias")


def _to_rgb(prefix: str, layer: PersistentRecord, out: dict[str, Tensor]) -> None:
    out[f"{prefix}.conv.weight"] = _tensor(layer, "weight")[None]
    out[f"{prefix}.conv.modulation.weight"] = _tensor(_module(layer, "affine"), "weight")
    out[f"{prefix}.conv.modulation.bias"] = _tensor(_module(layer, "affine"), "bias")
    out[f"{prefix}.bias"] = _tensor(layer, "bias").view(1, 3, 1, 1)


def to_rosinality(records: object) -> tuple[dict[str, Tensor], Tensor, dict]:
    """(rosinality `g_ema` state dict, latent_avg [512], extra config) of an NVlabs snapshot."""
    g = find_generator(records)
    _check_supported(g)
    mapping, synthesis = _module(g, "mapping"), _module(g, "synthesis")
    resolution = int(_attr(synthesis, "img_resolution"))
    if int(_attr(synthesis, "img_channels", 3)) != 3:
        raise UnsupportedNetwork("its images do not have 3 channels")
    out: dict[str, Tensor] = {}
    n_mlp = int(_attr(mapping, "num_layers"))
    lr_mlp = None
    for i in range(n_mlp):
        fc = _module(mapping, f"fc{i}")
        weight = _tensor(fc, "weight")
        bias_gain = float(_attr(fc, "bias_gain", 1.0))
        weight_gain = float(_attr(fc, "weight_gain"))
        if not math.isclose(weight_gain, bias_gain / math.sqrt(weight.shape[1]), rel_tol=1e-5):
            raise UnsupportedNetwork(f"mapping layer fc{i} has gains the engine does not model")
        if lr_mlp is not None and not math.isclose(lr_mlp, bias_gain):
            raise UnsupportedNetwork("its mapping layers have different learning-rate multipliers")
        lr_mlp = bias_gain
        out[f"style.{i + 1}.weight"] = weight
        out[f"style.{i + 1}.bias"] = _tensor(fc, "bias")
    w_avg = _tensor(mapping, "w_avg")
    clamps: set[float | None] = set()
    noise_index = 0
    log2 = int(math.log2(resolution))
    for j, res in enumerate(2 ** k for k in range(2, log2 + 1)):
        block = _module(synthesis, f"b{res}")
        kernel = _tensor(block, "resample_filter") * 4 if res > 4 else None
        if res == 4:
            out["input.input"] = _tensor(block, "const")[None]
            layers = [("conv1", _module(block, "conv1"))]
            _to_rgb("to_rgb1", _module(block, "torgb"), out)
        else:
            k = j - 1
            layers = [(f"convs.{2 * k}", _module(block, "conv0")), (f"convs.{2 * k + 1}", _module(block, "conv1"))]
            _to_rgb(f"to_rgbs.{k}", _module(block, "torgb"), out)
            out[f"to_rgbs.{k}.upsample.kernel"] = kernel
            out[f"convs.{2 * k}.conv.blur.kernel"] = _tensor(layers[0][1], "resample_filter") * 4
        for prefix, layer in layers:
            _styled(prefix, layer, out)
            out[f"noises.noise_{noise_index}"] = _tensor(layer, "noise_const")[None, None]
            noise_index += 1
            gain = float(_attr(layer, "act_gain", math.sqrt(2)))
            if not math.isclose(gain, math.sqrt(2)) or _attr(layer, "activation", "lrelu") != "lrelu":
                raise UnsupportedNetwork(f"layer {prefix} is not a leaky-ReLU layer with gain sqrt(2)")
            clamps.add(_attr(layer, "conv_clamp"))
        clamps.add(_attr(_module(block, "torgb"), "conv_clamp"))
    if len(clamps) > 1:
        raise UnsupportedNetwork(f"its layers have different conv_clamp values {sorted(map(str, clamps))}")
    clamp = clamps.pop()
    config = dict(conv_clamp=None if clamp is None else float(clamp), lr_mlp=float(lr_mlp or 0.01))
    return out, w_avg, config
