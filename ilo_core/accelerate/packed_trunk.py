"""A frozen conv + ReLU / max-pool backbone (LPIPS's alex and vgg trunks) as one autograd
node over prepacked oneDNN convolutions, for batch-1 work on CPU.

Per layer, autograd and Python cost tens of microseconds, and the LPIPS trunk at 64 px is
small enough for that to count. `PackedTrunk` runs every layer in one forward and writes
its backward out (ReLU masks, max-pool indices, each convolution's input gradient as a
prepacked convolution, `ilo_core.accelerate.packed_conv`). Two more changes:
  - A strided convolution (alex's first: 11 x 11, stride 4) runs as a stride-1
    convolution on the space-to-depth rearranged input (`F.pixel_unshuffle`): 3 x 3 over
    48 channels instead of 11 x 11 over 3. It computes 19 % more products (a 12 x 12
    kernel), but its input gradient is then a prepacked convolution too, where torch's
    strided backward takes a slow path.
  - The input scaling (x - shift) / scale: the division is folded into the first
    convolution's weights (exact up to rounding, as the zero padding of (x - shift) / scale
    is that of x - shift), the subtraction stays (its gradient is the identity).
docs/benchmark.md has the figures, against the per-layer packed trunk.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ilo_core.accelerate.packed_conv import PackedConvolution, packing_available


def space_to_depth_weight(weight: Tensor, stride: int) -> Tensor:
    """conv2d weight [O, C, k, k] at `stride` -> the stride-1 weight [O, C s^2, k', k'], k' =
    ceil(k / s), that acts on `F.pixel_unshuffle(x, s)` (channel c s^2 + a s + b holds
    x[c, s i + a, s j + b])."""
    o, c, k, _ = weight.shape
    k2 = math.ceil(k / stride)
    padded = F.pad(weight, (0, k2 * stride - k, 0, k2 * stride - k))
    return (padded.view(o, c, k2, stride, k2, stride).permute(0, 1, 3, 5, 2, 4)
            .reshape(o, c * stride * stride, k2, k2).contiguous())


class _ConvStage:
    """relu(conv2d(x)) for a frozen Conv2d (stride s, padding p), prepacked. At s > 1 the
    input is padded by p (and cropped or padded at the far side) to (H' - 1 + k') s pixels,
    rearranged by `F.pixel_unshuffle(., s)` and convolved at stride 1 without padding."""

    def __init__(self, conv: nn.Conv2d, input_scale: Callable[[], Tensor] | None) -> None:
        self.stride, self.padding, self.kernel = conv.stride[0], conv.padding[0], conv.kernel_size[0]
        weight = functools.partial(self._weight, conv, input_scale, self.stride)
        bias = functools.partial(getattr, conv, "bias")
        self.packed = PackedConvolution(weight, bias, transposed=False, padding=self.padding if self.stride == 1 else 0)

    @staticmethod
    def _weight(conv: nn.Conv2d, input_scale: Callable[[], Tensor] | None, stride: int) -> Tensor:
        w = conv.weight if input_scale is None else conv.weight / input_scale().view(1, -1, 1, 1)
        return w if stride == 1 else space_to_depth_weight(w, stride)

    def _pads(self, x: Tensor) -> list[int]:
        """F.pad's (left, right, top, bottom) for the space-to-depth form (negative = crop)."""
        k2 = math.ceil(self.kernel / self.stride)
        pads = []
        for size in (x.shape[3], x.shape[2]):
            out = (size + 2 * self.padding - self.kernel) // self.stride + 1
            pads += [self.padding, (out - 1 + k2) * self.stride - size - self.padding]
        return pads

    def input_form(self, x: Tensor) -> Tensor:
        """What the packed convolution sees: x itself, or its padded space-to-depth form."""
        if self.stride == 1:
            return x
        return F.pixel_unshuffle(F.pad(x, self._pads(x)), self.stride)

    def input_gradient(self, grad: Tensor, x: Tensor) -> Tensor:
        """The gradient with respect to x from that with respect to `input_form(x)`."""
        if self.stride == 1:
            return grad
        return F.pad(F.pixel_shuffle(grad, self.stride), [-p for p in self._pads(x)])


class _TrunkFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, trunk: "PackedTrunk") -> tuple[Tensor, ...]:
        h = x - trunk.shift()
        inputs, outputs, weights, taps = [], [], [], []
        for position, stage in enumerate(trunk.stages, 1):
            inputs.append(h)
            if isinstance(stage, _ConvStage):
                conv_input = stage.input_form(h)
                weights.append(stage.packed.packed_weights(conv_input))
                h = stage.packed.run_forward(conv_input, weights[-1])
                outputs.append(h)
                if position in trunk.taps:
                    taps.append(h)
            else:
                h, indices = F.max_pool2d_with_indices(h, *stage)
                outputs.append(indices)
        ctx.trunk, ctx.weights = trunk, weights
        ctx.save_for_backward(*inputs, *outputs)  # outputs include the returned taps: no cycle through ctx
        return tuple(taps)

    @staticmethod
    @once_differentiable
    def backward(ctx, *tap_grads: Tensor) -> tuple[Tensor, None]:
        trunk, weights = ctx.trunk, list(ctx.weights)
        saved = ctx.saved_tensors
        inputs, outputs = saved[:len(trunk.stages)], saved[len(trunk.stages):]
        grad: Tensor | None = None
        tap = len(tap_grads)
        for position in range(len(trunk.stages), 0, -1):
            stage, x, out = trunk.stages[position - 1], inputs[position - 1], outputs[position - 1]
            if isinstance(stage, _ConvStage):
                if position in trunk.taps:
                    tap -= 1
                    grad = tap_grads[tap] if grad is None else grad.add_(tap_grads[tap])
                grad = stage.input_gradient(stage.packed.run_backward(grad, out, weights.pop()), x)
            else:
                kernel, stride = stage
                grad = torch.ops.aten.max_pool2d_with_indices_backward(
                    grad.contiguous(memory_format=torch.channels_last), x, [kernel] * 2, [stride] * 2, [0, 0],
                    [1, 1], False, out)
        return grad, None


class PackedTrunk:
    """Frozen Conv2d + ReLU / MaxPool2d layers after the input scaling (x - shift) / scale,
    as one autograd node: x [B, C, H, W] -> the ReLU outputs that end the slices
    `layers[:tap_ends[0]]`, ... (channels-last), or None where it cannot run (x, the shift
    or the weights not float32 on CPU).

    `PackedTrunk.build` gives None for layers it cannot take (other layer types, pooling
    with padding, dilation or ceil_mode, convolutions with groups, dilation or no bias), or
    where this torch cannot pack. The weights, shift and scale are read from their owner
    when a shape is first packed (`ilo_core.accelerate.packed_conv`): they must stay frozen.
    """

    def __init__(self, stages: list[_ConvStage | tuple[int, int]], taps: set[int],
                 shift: Callable[[], Tensor]) -> None:
        self.stages, self.taps, self.shift = stages, taps, shift

    @classmethod
    def build(cls, layers: Sequence[nn.Module], tap_ends: Sequence[int], shift: Callable[[], Tensor],
              scale: Callable[[], Tensor]) -> "PackedTrunk | None":
        """shift(), scale(): the input scaling's [1, C, 1, 1] tensors."""
        if not packing_available():
            return None
        stages: list[_ConvStage | tuple[int, int]] = []
        taps: set[int] = set()
        i = 0
        while i < len(layers):
            layer = layers[i]
            if _convertible_conv(layer) and i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU):
                stages.append(_ConvStage(layer, scale if not stages else None))
                i += 2
                if i in tap_ends:
                    taps.add(len(stages))
            elif _convertible_pool(layer):
                stages.append((_square(layer.kernel_size), _square(layer.stride)))
                i += 1
            else:
                return None
        if len(taps) != len(tap_ends) or len(stages) not in taps or not isinstance(stages[0], _ConvStage):
            return None
        return cls(stages, taps, shift)

    def __call__(self, x: Tensor) -> list[Tensor] | None:
        # the owner's weights, shift and scale move and change dtype together
        if any(t.ndim != 4 or t.device.type != "cpu" or t.dtype != torch.float32 for t in (x, self.shift())):
            return None
        return list(_TrunkFunction.apply(x, self))


def _square(v: int | tuple[int, ...]) -> int | None:
    """The side of a square kernel / stride given as n or (n, n); None otherwise."""
    if isinstance(v, int):
        return v
    return v[0] if len(set(v)) == 1 else None


def _convertible_conv(conv: nn.Module) -> bool:
    """A square, ungrouped, undilated Conv2d with a bias, equal strides and paddings, padding < kernel."""
    return (isinstance(conv, nn.Conv2d) and conv.groups == 1 and conv.dilation == (1, 1) and conv.bias is not None
            and conv.padding_mode == "zeros" and isinstance(conv.padding, tuple)
            and _square(conv.kernel_size) is not None and _square(conv.stride) is not None
            and _square(conv.padding) is not None and conv.padding[0] < conv.kernel_size[0])


def _convertible_pool(pool: nn.Module) -> bool:
    """A MaxPool2d with square kernel and stride and no padding, dilation or ceil_mode."""
    return (isinstance(pool, nn.MaxPool2d) and _square(pool.kernel_size) is not None
            and _square(pool.stride) is not None and pool.padding in (0, (0, 0)) and pool.dilation in (1, (1, 1))
            and not pool.ceil_mode and not pool.return_indices)
