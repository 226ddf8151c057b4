"""StyleGAN-2's modulated convolutions as activation scaling (`accelerate_stylegan2`).

rosinality's (and NVlabs' reference) modulated convolution builds a weight per sample and
runs one grouped convolution. The same linear map: scale the input channels by the style,
convolve with the shared weight, scale the output channels by the demodulation
coefficients. A batch is then one ordinary convolution, and the backward pass needs no
gradient of a per-sample weight (the style's gradient comes from the input gradient,
which is computed anyway). In a StyledConv the sqrt(2) gain of the leaky ReLU joins the
demodulation, the noise and the bias, so the full-size map is passed over three times,
not five. The figures are in docs/benchmark.md.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ilo_core.generators.stylegan2 import ModulatedConv2d, StyledConv, ToRGB

SQRT2 = math.sqrt(2.0)


class ScaledModulatedConv2d(nn.Module):
    """The map of a `ModulatedConv2d` (whose weight, modulation and blur it shares), by activation scaling."""

    def __init__(self, plain: ModulatedConv2d) -> None:
        super().__init__()
        if plain.upsample:  # registered in the plain module's order: the same state-dict keys, in order
            self.blur = plain.blur
        self.weight, self.modulation = plain.weight, plain.modulation
        self.upsample, self.padding, self.demodulate = plain.upsample, plain.padding, plain.demodulate
        self.cin, self.cout = plain.cin, plain.cout
        with torch.no_grad():
            weight = plain.scale * plain.weight[0]  # [Cout, Cin, k, k]
            conv_weight = (weight.transpose(0, 1) if plain.upsample else weight).contiguous()
            weight_sq = weight.square().sum((2, 3))  # [Cout, Cin]: sum_k (scale W)^2
        # derived from the frozen weight (not saved); they move and change dtype with the module
        self.register_buffer("conv_weight", conv_weight, persistent=False)  # in F.conv*'s layout
        self.register_buffer("weight_sq", weight_sq, persistent=False)

    def forward(self, x: Tensor, w: Tensor, gain: float = 1.0) -> Tensor:
        """x: [B, Cin, H, W]; w: [B, style_dim] -> [B, Cout, H', W'], times `gain`."""
        b = x.shape[0]
        style = self.modulation(w)  # [B, Cin]
        x = x * style.view(b, self.cin, 1, 1)
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, self.conv_weight, stride=2))
        else:
            out = F.conv2d(x, self.conv_weight, padding=self.padding)
        if self.demodulate:
            demod = torch.rsqrt(style.square() @ self.weight_sq.t() + 1e-8) * gain  # [B, Cout]
            out = out * demod.view(b, self.cout, 1, 1)
        elif gain != 1.0:
            out = out * gain
        return out


class FusedStyledConv(nn.Module):
    """The map of a `StyledConv` (sharing its weights): sqrt(2) leaky_relu(a) = leaky_relu(sqrt(2) a)."""

    def __init__(self, plain: StyledConv) -> None:
        super().__init__()
        self.conv, self.noise, self.activate = ScaledModulatedConv2d(plain.conv), plain.noise, plain.activate
        self.clamp = plain.clamp

    def forward(self, x: Tensor, w: Tensor, noise: Tensor) -> Tensor:
        out = self.conv(x, w, gain=SQRT2)  # a fresh tensor that autograd has not saved
        out.add_(noise * (SQRT2 * self.noise.weight)).add_((SQRT2 * self.activate.bias).view(1, -1, 1, 1))
        out = F.leaky_relu(out, 0.2, inplace=True)
        return out if self.clamp is None else out.clamp(-self.clamp, self.clamp)


def accelerate_stylegan2(generator: nn.Module) -> nn.Module:
    """Swap every StyledConv and every ToRGB's convolution for the forms above (in place; returns it).
    The state dict keeps its keys (the new modules hold the same parameters under the same names)."""
    for parent in list(generator.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, StyledConv):
                setattr(parent, name, FusedStyledConv(child))
            elif isinstance(parent, ToRGB) and isinstance(child, ModulatedConv2d):
                setattr(parent, name, ScaledModulatedConv2d(child))
    return generator
