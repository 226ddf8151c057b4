"""StyleGAN-2 generator in the rosinality/stylegan2-pytorch checkpoint layout, native ops.

Loads `{"g_ema": state_dict, "latent_avg": ...}` checkpoints of any resolution and
channel multiplier (both read from the weights) with a strict key/shape match. Nothing
is compiled: fused leaky ReLU is `leaky_relu(x + b, 0.2) * sqrt(2)` and upfirdn2d is
zero-insertion upsampling, padding and a depthwise FIR convolution.

Layers (split point k sits before layer k), size 2^L, num_layers = L - 1:
    layer 0:      constant 4x4 -> conv1 (w+ row 0, noise 0) -> to_rgb1 (row 1)
    layer j >= 1: upsampling conv (row 2j-1, noise 2j-1), conv (row 2j, noise 2j),
                  to_rgb (row 2j+1) whose output is added to the upsampled RGB skip.
The state at split k >= 1 is {"features": [B, C, 2^(k+1), 2^(k+1)], "skip": [B, 3, ., .]}:
the RGB skip image is part of it, so rendering from any split is exact.

Optimized variables (ILO / PULSE): "latent" = Gaussianized w+ rows z [B, n_latent, 512]
with w = leaky_relu(std * z + mean, 0.2), where mean/std (`gauss_mean`, `gauss_std`) are
fitted per dimension on leaky_relu(mapping(z), 5) by `ilo_core.checkpoints.loading`; and
noise maps "noise_i" [B, 1, r, r].

This is the plain model; `ilo_core.accelerate` swaps its modulated convolutions for faster
forms of the same maps at load.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ilo_core.generators.base import SplitGenerator, State, Tuning, Variables

SQRT2 = math.sqrt(2.0)
CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}


def fused_leaky_relu(x: Tensor, bias: Tensor) -> Tensor:
    """leaky_relu(x + bias, 0.2) * sqrt(2), bias per channel (dim 1)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape), 0.2) * SQRT2


def upfirdn2d(x: Tensor, kernel: Tensor, up: int = 1, pad: tuple[int, int] = (0, 0)) -> Tensor:
    """Upsample by inserting zeros, pad (pad0 before, pad1 after, both axes), FIR-filter.

    x: [B, C, H, W]; kernel: [kh, kw] (applied flipped, as a true convolution).
    """
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(b, c, h * up, w * up)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    weight = torch.flip(kernel, (0, 1)).to(x.dtype)[None, None].expand(c, 1, *kernel.shape).contiguous()
    return F.conv2d(x, weight, groups=c)


def make_kernel(taps: list[int]) -> Tensor:
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum()


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate; optional fused leaky ReLU."""

    def __init__(self, in_dim: int, out_dim: int, lr_mul: float = 1.0, activation: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_dim, in_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class PixelNorm(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class Blur(nn.Module):
    def __init__(self, taps: list[int], pad: tuple[int, int], upsample_factor: int = 1) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps) * upsample_factor**2)
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    def __init__(self, taps: list[int], factor: int = 2) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps) * factor**2)
        p = len(taps) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution, optional 2x upsampling (rosinality's fused path): the
    weight modulated per sample and demodulated, one grouped convolution over the batch.
    `ilo_core.accelerate` swaps it for an equal map that scales activations instead."""

    def __init__(self, cin: int, cout: int, k: int, style_dim: int, demodulate: bool = True,
                 upsample: bool = False, taps: list[int] = (1, 3, 3, 1)) -> None:
        super().__init__()
        self.upsample = upsample
        if upsample:
            factor = 2
            p = (len(taps) - factor) - (k - 1)
            self.blur = Blur(list(taps), pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.weight = nn.Parameter(torch.zeros(1, cout, cin, k, k))
        self.modulation = EqualLinear(style_dim, cin)
        self.scale = 1 / math.sqrt(cin * k * k)
        self.padding = k // 2
        self.demodulate = demodulate
        self.cin, self.cout, self.k = cin, cout, k

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        """x: [B, Cin, H, W]; w: [B, style_dim] -> [B, Cout, H', W']."""
        b, _, h, wd = x.shape
        style = self.modulation(w).view(b, 1, self.cin, 1, 1)
        weight = self.scale * self.weight * style  # [B, Cout, Cin, k, k]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum((2, 3, 4)) + 1e-8).view(b, self.cout, 1, 1, 1)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(b * self.cin, self.cout, self.k, self.k)
            out = F.conv_transpose2d(x.reshape(1, b * self.cin, h, wd), weight, stride=2, groups=b)
            out = out.view(b, self.cout, out.shape[-2], out.shape[-1])
            return self.blur(out)
        weight = weight.reshape(b * self.cout, self.cin, self.k, self.k)
        out = F.conv2d(x.reshape(1, b * self.cin, h, wd), weight, padding=self.padding, groups=b)
        return out.view(b, self.cout, h, wd)


class NoiseInjection(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, noise: Tensor) -> Tensor:
        return x + self.weight * noise


class FusedLeakyReLU(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return fused_leaky_relu(x, self.bias)


class StyledConv(nn.Module):
    """Modulated conv, noise, bias + leaky ReLU (gain sqrt 2), then clamped to +-`clamp`
    when given (NVlabs' `conv_clamp`; rosinality has none)."""

    def __init__(self, cin: int, cout: int, k: int, style_dim: int, upsample: bool = False,
                 clamp: float | None = None) -> None:
        super().__init__()
        self.clamp = clamp
        self.conv = ModulatedConv2d(cin, cout, k, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(cout)

    def forward(self, x: Tensor, w: Tensor, noise: Tensor) -> Tensor:
        out = self.activate(self.noise(self.conv(x, w), noise))
        return out if self.clamp is None else out.clamp(-self.clamp, self.clamp)


class ToRGB(nn.Module):
    """1x1 modulated conv without demodulation + bias (clamped to +-`clamp` when given), plus
    the upsampled RGB skip."""

    def __init__(self, cin: int, style_dim: int, upsample: bool = True, clamp: float | None = None) -> None:
        super().__init__()
        self.clamp = clamp
        if upsample:
            self.upsample = Upsample([1, 3, 3, 1])
        self.conv = ModulatedConv2d(cin, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: Tensor, w: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.conv(x, w) + self.bias
        if self.clamp is not None:
            out = out.clamp(-self.clamp, self.clamp)
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ConstantInput(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.zeros(1, channels, 4, 4))

    def forward(self, batch: int) -> Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyleGAN2Generator(SplitGenerator):
    """Frozen StyleGAN-2 (rosinality layout) with split points between its resolution blocks."""

    kind = "stylegan2"
    tuning = Tuning()  # the paper's values (appendix 7.3): radii, VGG-LPIPS, geodesic weight 0.01, one start

    def __init__(self, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 lr_mlp: float = 0.01, channels: dict[int, int] | None = None,
                 conv_clamp: float | None = None) -> None:
        """`channels` (resolution -> feature channels) overrides rosinality's table times
        `channel_multiplier` (NVlabs' networks have min(channel_base / res, channel_max));
        `conv_clamp` clamps every layer's output as NVlabs' networks do."""
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"StyleGAN-2 size must be a power of two >= 8, got {size}")
        self.size = self.resolution = size
        self.style_dim = style_dim
        ch = ({int(r): int(c) for r, c in channels.items()} if channels is not None
              else {r: c * (channel_multiplier if r >= 64 else 1) for r, c in CHANNELS.items()})
        self.config = dict(size=size, style_dim=style_dim, n_mlp=n_mlp, channel_multiplier=channel_multiplier,
                           lr_mlp=lr_mlp, channels=None if channels is None else dict(ch), conv_clamp=conv_clamp)
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True)
                                                   for _ in range(n_mlp)])
        self.input = ConstantInput(ch[4])
        ops = dict(clamp=conv_clamp)
        self.conv1 = StyledConv(ch[4], ch[4], 3, style_dim, **ops)
        self.to_rgb1 = ToRGB(ch[4], style_dim, upsample=False, **ops)
        self.log_size = int(math.log2(size))
        self.num_layers = self.log_size - 1
        self.n_latent = self.log_size * 2 - 2
        self.num_noises = (self.log_size - 2) * 2 + 1
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for i in range(self.num_noises):
            r = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.zeros(1, 1, r, r))
        cin = ch[4]
        for i in range(3, self.log_size + 1):
            cout = ch[2**i]
            self.convs.append(StyledConv(cin, cout, 3, style_dim, upsample=True, **ops))
            self.convs.append(StyledConv(cout, cout, 3, style_dim, **ops))
            self.to_rgbs.append(ToRGB(cout, style_dim, **ops))
            cin = cout
        self.register_buffer("gauss_mean", torch.zeros(style_dim), persistent=False)
        self.register_buffer("gauss_std", torch.ones(style_dim), persistent=False)
        self.register_buffer("latent_avg", torch.zeros(style_dim), persistent=False)

    @property
    def device(self) -> torch.device:
        return self.input.input.device

    # --- rosinality-compatible rendering ---------------------------------------------
    def mapping(self, z: Tensor) -> Tensor:
        """z [B, 512] -> w [B, 512]."""
        return self.style(z)

    def w_to_latent(self, w: Tensor) -> Tensor:
        """w or w+ -> Gaussianized latent (inverse of `latent_to_w`)."""
        return (F.leaky_relu(w, 5.0) - self.gauss_mean) / self.gauss_std

    def latent_to_w(self, latent: Tensor) -> Tensor:
        """Gaussianized latent [B, n, 512] -> w+ [B, n, 512]."""
        return F.leaky_relu(latent * self.gauss_std + self.gauss_mean, 0.2)

    def stored_noises(self, batch: int = 1) -> list[Tensor]:
        return [getattr(self.noises, f"noise_{i}").expand(batch, -1, -1, -1) for i in range(self.num_noises)]

    def synthesize(self, wplus: Tensor, noises: list[Tensor] | None = None) -> Tensor:
        """w+ [B, n_latent, 512] and noise maps -> image [B, 3, R, R] (rosinality's forward)."""
        noises = noises if noises is not None else self.stored_noises(wplus.shape[0])
        v = {"wplus": wplus, **{f"noise_{i}": n for i, n in enumerate(noises)}}
        return self.render(v)

    def forward_z(self, z: Tensor, truncation: float = 1.0, noises: list[Tensor] | None = None) -> Tensor:
        """z [B, 512] -> image, truncation toward latent_avg applied to w (rosinality semantics)."""
        w = self.mapping(z)
        if truncation < 1:
            w = self.latent_avg + truncation * (w - self.latent_avg)
        return self.synthesize(w[:, None].expand(-1, self.n_latent, -1), noises)

    # --- split-generator interface -----------------------------------------------------
    def sample_variables(self, batch: int, generator: torch.Generator | None = None) -> Variables:
        """One random Gaussianized latent repeated over the rows, random noise maps."""
        z = torch.randn(batch, 1, self.style_dim, generator=generator, device=self.device)
        v: Variables = {"latent": z.repeat(1, self.n_latent, 1)}
        for i in range(self.num_noises):
            r = 2 ** ((i + 5) // 2)
            v[f"noise_{i}"] = torch.randn(batch, 1, r, r, generator=generator, device=self.device)
        return v

    def variable_group(self, name: str) -> str:
        if name in ("latent", "wplus"):
            return "latents"
        if name.startswith("noise_"):
            return "noises"
        raise KeyError(name)

    def latent_rows(self, split: int) -> slice:
        return slice(max(0, 2 * split - 1), self.n_latent)

    def active_variables(self, split: int, round_index: int = 0) -> list[str]:
        """The latent and the noise maps read after `split`; PULSE/ILO schedule: only the
        first 5 + 2 * round noise maps are optimized."""
        first = max(0, 2 * split - 1)
        last = min(self.num_noises, 5 + 2 * round_index)
        return ["latent"] + [f"noise_{i}" for i in range(first, last)]

    def _row(self, variables: Variables, i: int) -> Tensor:
        if "wplus" in variables:
            return variables["wplus"][:, i]
        return self.latent_to_w(variables["latent"][:, i])

    def advance(self, split: int, state: State, variables: Variables) -> State:
        self._check_split(split)
        if split == 0:
            batch = next(iter(variables.values())).shape[0]
            x = self.conv1(self.input(batch), self._row(variables, 0), variables["noise_0"])
            return {"features": x, "skip": self.to_rgb1(x, self._row(variables, 1))}
        j = split - 1
        x = self.convs[2 * j](state["features"], self._row(variables, 2 * split - 1), variables[f"noise_{2 * split - 1}"])
        x = self.convs[2 * j + 1](x, self._row(variables, 2 * split), variables[f"noise_{2 * split}"])
        return {"features": x, "skip": self.to_rgbs[j](x, self._row(variables, 2 * split + 1), state["skip"])}

    def to_image(self, state: State) -> Tensor:
        return state["skip"]

    def describe(self) -> dict[str, object]:
        info = super().describe()
        info.update(self.config)
        info["n_latent"] = self.n_latent
        info["num_noises"] = self.num_noises
        return info


def infer_config(state_dict: dict[str, Tensor]) -> dict:
    """Read size, style_dim, n_mlp and the channels from a rosinality state dict: as
    `channel_multiplier` where they follow rosinality's table, else as `channels`."""
    try:
        n_mlp = len({k.split(".")[1] for k in state_dict if k.startswith("style.")})
        style_dim = state_dict["style.1.weight"].shape[0]
        n_to_rgbs = len({k.split(".")[1] for k in state_dict if k.startswith("to_rgbs.")})
        size = 2 ** (n_to_rgbs + 2)
        channels = {4: int(state_dict["input.input"].shape[1])}
        for j in range(n_to_rgbs):
            channels[2 ** (j + 3)] = int(state_dict[f"convs.{2 * j + 1}.conv.weight"].shape[1])
    except KeyError as err:
        raise ValueError(f"not a rosinality StyleGAN-2 state dict (missing {err})") from None
    multiplier = max(1, channels.get(64, 256) // 256)
    table = {r: c * (multiplier if r >= 64 else 1) for r, c in CHANNELS.items() if r <= size}
    config = dict(size=size, style_dim=style_dim, n_mlp=n_mlp, channel_multiplier=multiplier)
    if channels != table:
        config["channels"] = channels
    return config


# What a StyleGAN-2 checkpoint may describe: the published ones are 256-1024 px with 8 mapping
# layers, 512-d styles and at most 512 x 2 channels. A file outside these is refused before
# any module is built (a few KB of key names could otherwise describe gigabytes).
LIMITS = {"size": 2048, "n_mlp": 16, "style_dim": 1024, "channels": 2048}


def check_config(config: object) -> dict:
    """`config` (from a file's key names or metadata) as a StyleGAN-2 config within LIMITS;
    ValueError naming the limit otherwise. Checks types too: a config from a file is data."""
    if not isinstance(config, dict):
        raise ValueError(f"its config is a {type(config).__name__}, not a mapping")
    for key in ("size", "style_dim", "n_mlp"):
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"its config's {key} is {value!r}, not a whole number")
    size, n_mlp, style_dim = config["size"], config["n_mlp"], config["style_dim"]
    if not 8 <= size <= LIMITS["size"] or size & (size - 1):
        raise ValueError(f"it describes a {size} px generator; the limit is a power of two from 8 to {LIMITS['size']} px")
    if not 1 <= n_mlp <= LIMITS["n_mlp"]:
        raise ValueError(f"it describes {n_mlp} mapping layers; the limit is 1 to {LIMITS['n_mlp']}")
    if not 1 <= style_dim <= LIMITS["style_dim"]:
        raise ValueError(f"it describes {style_dim}-dimensional styles; the limit is {LIMITS['style_dim']}")
    multiplier = config.get("channel_multiplier", 2)
    if not isinstance(multiplier, int) or not 1 <= multiplier <= LIMITS["channels"] // 512:
        raise ValueError(f"its channel multiplier {multiplier!r} is not 1 to {LIMITS['channels'] // 512}")
    channels = config.get("channels")
    if channels is not None:
        if not isinstance(channels, dict):
            raise ValueError(f"its config's channels is a {type(channels).__name__}, not a mapping")
        for r, c in channels.items():
            if not str(r).isdigit() or not isinstance(c, int) or not 1 <= c <= LIMITS["channels"]:
                raise ValueError(f"it describes {c!r} channels at {r!r} px; the limit is {LIMITS['channels']}")
        needed = {2 ** k for k in range(2, int(math.log2(size)) + 1)}
        if {int(r) for r in channels} != needed:
            raise ValueError(f"its channels name resolutions {sorted(int(r) for r in channels)[:6]}, "
                             f"not 4 to {size} px")
    for key in ("lr_mlp", "conv_clamp"):
        value = config.get(key)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                  or not math.isfinite(value) or value <= 0):
            raise ValueError(f"its config's {key} is {value!r}, not a positive number")
    return config


def check_against_tensors(config: dict, state_dict: dict[str, Tensor]) -> None:
    """ValueError unless `state_dict` has exactly the tensors (names and shapes) of the
    generator `config` describes: the generator is laid out on the meta device (no memory)."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in StyleGAN2Generator(**config).state_dict().items()}
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        raise ValueError(f"its tensors are not those of the generator its keys describe: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    for key, shape in expected.items():
        if tuple(state_dict[key].shape) != shape:
            raise ValueError(f"its {key} is {tuple(state_dict[key].shape)}, not {shape}")
