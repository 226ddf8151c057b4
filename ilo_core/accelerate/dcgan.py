"""The DCGAN's stages in fast forms of the same maps (`accelerate_dcgan`).

Each tutorial stage (ConvTranspose2d, BatchNorm2d in eval mode, ReLU / Tanh) becomes a
`FoldedStage`: BatchNorm folded into the transposed convolution's weight and bias, then
  - on a float32 CPU, one oneDNN transposed convolution with the activation fused and the
    weights prepacked, the input gradient too (`packed_conv`);
  - elsewhere (GPU, float64, no oneDNN), the stages with 1x1 and 4x4 inputs (most of the
    weights) as one matrix product and a col2im (`F.fold`), the larger maps with torch's
    transposed-convolution kernels.
The figures are in docs/benchmark.md.
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ilo_core.accelerate.packed_conv import PackedConvolution, packed_form_agrees, packing_available

GEMM_MAX_INPUT = 4  # stages whose input maps are at most this wide run as a matrix product


def transposed_conv_gemm(x: Tensor, weight_cols: Tensor, bias: Tensor, kernel: int, stride: int, padding: int,
                         out_size: int) -> Tensor:
    """conv_transpose2d(x, W, bias, stride, padding) as (W^T x) then col2im.

    x: [B, Cin, H, W]; weight_cols: [Cout*k*k, Cin], W.reshape(Cin, -1).t() for W [Cin, Cout, k, k]
    (this layout makes both the product and its input-gradient product fast) -> [B, Cout, S, S].
    """
    b, cin, h, w = x.shape
    x2 = x.reshape(b, cin, h * w)
    x2 = x2[0] if b == 1 else x2.transpose(0, 1).reshape(cin, b * h * w)
    cols = weight_cols @ x2  # [Cout*k*k, B*H*W]
    cols = cols[None] if b == 1 else cols.view(-1, b, h * w).transpose(0, 1)
    out = F.fold(cols, (out_size, out_size), kernel, stride=stride, padding=padding)
    return out + bias.view(1, -1, 1, 1)


class FoldedStage(nn.Module):
    """One tutorial stage with BatchNorm folded in: x [B, Cin, S, S] -> [B, Cout, S', S']."""

    def __init__(self, stage: nn.Sequential, input_size: int) -> None:
        super().__init__()
        conv = stage[0]
        weight = conv.weight.detach().float()  # [Cin, Cout, k, k]
        cout = weight.shape[1]
        if isinstance(stage[1], nn.BatchNorm2d):
            bn = stage[1]
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            bias = bn.bias - bn.running_mean * scale
        else:
            scale, bias = torch.ones(cout), torch.zeros(cout)
        weight = weight * scale.detach().view(1, -1, 1, 1)
        self.activation = "tanh" if isinstance(stage[-1], nn.Tanh) else "relu"
        self.kernel, self.stride, self.padding = conv.kernel_size[0], conv.stride[0], conv.padding[0]
        self.input_size = input_size
        self.output_size = (input_size - 1) * self.stride - 2 * self.padding + self.kernel
        self.as_gemm = input_size <= GEMM_MAX_INPUT
        if self.as_gemm:
            weight = weight.reshape(weight.shape[0], -1).t()  # [Cout*k*k, Cin]: transposed_conv_gemm's layout
        self.register_buffer("weight", weight.contiguous())  # else [Cin, Cout, k, k]
        self.register_buffer("bias", bias.detach().float().contiguous())
        self.packed: PackedConvolution | None = None  # set by accelerate_dcgan where it agrees

    def conv_weight(self) -> Tensor:
        """The folded weight in conv_transpose2d's layout [Cin, Cout, k, k] (a copy for the matrix-product stages)."""
        if self.as_gemm:
            return self.weight.t().reshape(self.weight.shape[1], -1, self.kernel, self.kernel)
        return self.weight

    def pack(self) -> None:
        self.packed = PackedConvolution(self.conv_weight, lambda: self.bias, transposed=True, stride=self.stride,
                                        padding=self.padding, activation=self.activation)

    def plain(self, x: Tensor) -> Tensor:
        """Without oneDNN packing (matrix product + col2im, or torch's kernels)."""
        if self.as_gemm:
            x = transposed_conv_gemm(x, self.weight, self.bias, self.kernel, self.stride, self.padding,
                                     self.output_size)
        else:
            x = F.conv_transpose2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)
        return torch.tanh(x) if self.activation == "tanh" else F.relu(x)

    def forward(self, x: Tensor) -> Tensor:
        out = None if self.packed is None else self.packed(x)  # None off a float32 CPU
        return self.plain(x) if out is None else out


def _render(stages: list[FoldedStage], z: Tensor, packed: bool) -> list[Tensor | None]:
    """[image] from z [B, nz] through the packed stages or the unpacked ones ([None] where a
    packed stage cannot run): the two forms that `packed_form_agrees` compares."""
    x = z[:, :, None, None]
    for stage in stages:
        x = stage.packed(x) if packed else stage.plain(x)
        if x is None:
            return [None]
    return [x]


def accelerate_dcgan(generator: nn.Module) -> nn.Module:
    """Swap a DCGANGenerator's stages for `FoldedStage`s, packed where oneDNN agrees (in place; returns it)."""
    stages, size = [], 1  # z enters as a 1x1 map
    for stage in generator.stages:
        stages.append(FoldedStage(stage, size))
        size = stages[-1].output_size
    if packing_available():
        for stage in stages:
            stage.pack()
        probe = torch.randn(1, generator.nz, generator=torch.Generator().manual_seed(0)).to(stages[0].weight)
        if not packed_form_agrees(functools.partial(_render, stages, packed=False),
                                  functools.partial(_render, stages, packed=True), probe):
            warnings.warn("DCGAN: oneDNN-packed stages disagree with the plain ones or cannot run here; "
                          "using the unpacked fast path")
            for stage in stages:
                stage.packed = None
    generator.stages = nn.ModuleList(stages)
    return generator
