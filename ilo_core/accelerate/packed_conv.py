"""Frozen convolutions + activation with oneDNN-prepacked weights, for batch-1 work on CPU.

`F.conv2d` / `F.conv_transpose2d` on CPU hand oneDNN (or an im2col path) the plain weight
on every call, and the activation after them is a separate pass. `PackedConvolution`
reorders the weight once into oneDNN's blocked layout, fuses the activation into the
convolution, and prepacks the weight of the input gradient too (which is itself a
convolution). The LPIPS trunk (`packed_trunk`) and the DCGAN's stages (`dcgan`) run on it;
docs/benchmark.md has the figures, timed in turn against the plain modules.

oneDNN's blocked layout depends on the input's shape: a weight packed for other spatial
sizes is reordered again on every call (far slower than not packing). So the packed
weights are made on the first call for each input shape and kept for the `max_shapes`
shapes used last, under a lock. They are derived, read-only constants of a frozen weight:
which path runs, and so the result, depends only on the input (never on what ran
before), and one object serves many threads. Other devices and dtypes get None, and the
caller runs its plain path.

It calls torch's `mkldnn::_reorder_convolution_weight`, `_reorder_convolution_transpose_weight`,
`_convolution_pointwise` and `_convolution_transpose_pointwise` (the ops torch.compile's CPU
backend emits). They are not public API: `packing_available()` checks that they exist,
and the users check the packed result against their plain path once, at load.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

ACTIVATIONS = ("relu", "tanh")


def packing_available() -> bool:
    """Whether this torch build has oneDNN and the ops this module calls."""
    ops = ("_convolution_pointwise", "_convolution_transpose_pointwise", "_reorder_convolution_weight",
           "_reorder_convolution_transpose_weight")
    return torch.backends.mkldnn.is_available() and all(hasattr(torch.ops.mkldnn, op) for op in ops)


def _flops(transposed: bool) -> Callable[..., int]:
    def count(x_shape: list[int], w_shape: list[int], *args: object, out_shape: list[int], **kwargs: object) -> int:
        # multiply-adds: every (input pixel of a transposed convolution, or output pixel of a
        # convolution) x Cin x Cout x kernel taps; the packed weight's shape gives the taps
        pixels = math.prod(x_shape[2:]) if transposed else math.prod(out_shape[2:])
        return 2 * x_shape[0] * x_shape[1] * out_shape[1] * w_shape[-1] * w_shape[-2] * pixels
    return count


def flop_formulas() -> dict[object, object]:
    """FLOP counts of this module's oneDNN ops, for torch.utils.flop_counter.FlopCounterMode(custom_mapping=...)."""
    if not packing_available():
        return {}
    return {torch.ops.mkldnn._convolution_pointwise: _flops(False),
            torch.ops.mkldnn._convolution_transpose_pointwise: _flops(True)}


class _PackedFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, conv: "PackedConvolution", weights: tuple[Tensor, Tensor]) -> Tensor:
        out = conv.run_forward(x, weights)
        ctx.save_for_backward(out)
        ctx.conv, ctx.weights = conv, weights
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        (out,) = ctx.saved_tensors
        return ctx.conv.run_backward(grad, out, ctx.weights), None, None


class PackedConvolution:
    """activation(conv2d(x, W, b)) or activation(conv_transpose2d(x, W, b)), prepacked.

    weight() gives conv2d's [Cout, Cin, k, k] (stride 1, padding 0 .. k - 1) or
    conv_transpose2d's [Cin, Cout, k, k] (any stride and padding, no output padding), and
    bias() the [Cout] bias: they are read from their owner when needed, so that no second
    copy of the weights is kept. Calling it with x [B, Cin, H, W] gives the output (one
    autograd node), or None where it cannot run (x or the bias not a float32 CPU tensor).
    `packed_weights`, `run_forward` and `run_backward` are the same computation for callers
    that chain several convolutions in one autograd node of their own.
    """

    def __init__(self, weight: Callable[[], Tensor], bias: Callable[[], Tensor], *, transposed: bool,
                 stride: int = 1, padding: int = 0, activation: str = "relu", max_shapes: int = 4) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        k = weight().shape[-1]
        if not transposed and (stride != 1 or not 0 <= padding < k):
            raise ValueError("a packed conv2d must be stride 1 with a padding of 0 .. k - 1")
        self.weight, self.bias, self.kernel_size = weight, bias, k
        self.transposed, self.stride, self.padding, self.activation = transposed, stride, padding, activation
        self.max_shapes = max_shapes
        # input shape -> (forward, backward) packed weights, least recently used first
        self._packed: OrderedDict[tuple[int, ...], tuple[Tensor, Tensor]] = OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, object]:  # copies start without packed weights (and a fresh lock)
        return {k: v for k, v in self.__dict__.items() if k not in ("_packed", "_lock")}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._packed, self._lock = OrderedDict(), threading.Lock()

    def _packed_weights(self, shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
        b, _, h, w = shape
        weight = self.weight().detach().float().contiguous()
        pad, stride, k = [self.padding] * 2, [self.stride] * 2, weight.shape[-1]
        ops = torch.ops.mkldnn
        if self.transposed:
            out_h, out_w = ((h - 1) * self.stride - 2 * self.padding + k, (w - 1) * self.stride - 2 * self.padding + k)
            cout = weight.shape[1]
            forward = ops._reorder_convolution_transpose_weight(weight, pad, [0, 0], stride, [1, 1], 1, list(shape))
            backward = ops._reorder_convolution_weight(weight, pad, stride, [1, 1], 1, [b, cout, out_h, out_w])
        else:
            cout, out_h, out_w = weight.shape[0], h + 2 * self.padding - k + 1, w + 2 * self.padding - k + 1
            flipped = weight.transpose(0, 1).flip(2, 3).contiguous()
            forward = ops._reorder_convolution_weight(weight, pad, stride, [1, 1], 1, list(shape))
            backward = ops._reorder_convolution_weight(flipped, [self._backward_padding()] * 2, [1, 1], [1, 1], 1,
                                                       [b, cout, out_h, out_w])
        return forward, backward

    def _backward_padding(self) -> int:
        # the input gradient is a convolution too: of a transposed convolution, with the same
        # weight, stride and padding; of a stride-1 convolution with padding p, with the
        # weight flipped and transposed and padding k - 1 - p
        return self.padding if self.transposed else self.kernel_size - 1 - self.padding

    def packed_weights(self, x: Tensor) -> tuple[Tensor, Tensor] | None:
        """The (forward, input-gradient) packed weights for x's shape, or None where this
        cannot run (x or the bias not a float32 CPU tensor, x not 4-d)."""
        bias = self.bias()
        if x.ndim != 4 or any(t.device.type != "cpu" or t.dtype != torch.float32 for t in (x, bias)):
            return None
        shape = tuple(x.shape)
        with self._lock:
            if shape in self._packed:
                self._packed.move_to_end(shape)
            else:
                self._packed[shape] = self._packed_weights(shape)
                if len(self._packed) > self.max_shapes:
                    self._packed.popitem(last=False)
            return self._packed[shape]

    def run_forward(self, x: Tensor, weights: tuple[Tensor, Tensor]) -> Tensor:
        """activation(conv(x)), channels-last, no autograd: x [B, Cin, H, W] -> [B, Cout, H', W']."""
        x = x.contiguous(memory_format=torch.channels_last)
        pad, stride = [self.padding] * 2, [self.stride] * 2
        if self.transposed:
            return torch.ops.mkldnn._convolution_transpose_pointwise(
                x, weights[0], self.bias(), pad, [0, 0], stride, [1, 1], 1, self.activation, [], "")
        return torch.ops.mkldnn._convolution_pointwise(
            x, weights[0], self.bias(), pad, stride, [1, 1], 1, self.activation, [], "")

    def run_backward(self, grad: Tensor, out: Tensor, weights: tuple[Tensor, Tensor]) -> Tensor:
        """The input gradient [B, Cin, H, W] from the output gradient and the output `run_forward` gave."""
        grad = grad.contiguous(memory_format=torch.channels_last)
        if self.activation == "relu":
            grad = torch.ops.aten.threshold_backward(grad, out, 0)
        else:
            grad = torch.ops.aten.tanh_backward(grad, out)
        stride = [self.stride] * 2 if self.transposed else [1, 1]
        pad = [self._backward_padding()] * 2
        return torch.ops.mkldnn._convolution_pointwise(grad, weights[1], None, pad, stride, [1, 1], 1, "none", [], "")

    def __call__(self, x: Tensor) -> Tensor | None:
        weights = self.packed_weights(x)
        return None if weights is None else _PackedFunction.apply(x, self, weights)

    @property
    def shapes_packed(self) -> int:
        return len(self._packed)


@torch.enable_grad()
def outputs_and_input_gradient(run: Callable[[Tensor], list[Tensor]], probe: Tensor) -> list[Tensor]:
    """run(probe)'s outputs and the gradient, with respect to the probe, of a fixed
    non-uniform weighting of them: what a fast form must reproduce of its plain form."""
    x = probe.clone().requires_grad_(True)
    outs = run(x)
    sum((o * torch.linspace(-1, 1, o.numel(), device=o.device).view_as(o)).sum() for o in outs).backward()
    return [o.detach() for o in outs] + [x.grad]


def agree(reference: list[Tensor], candidate: list[Tensor], tolerance: float = 1e-4) -> bool:
    """Whether each candidate tensor is within `tolerance` of the reference's largest entry."""
    return all(bool((a - b).abs().max() <= tolerance * a.abs().max().clamp_min(1e-12))
               for a, b in zip(reference, candidate))


def packed_form_agrees(plain: Callable[[Tensor], list[Tensor]], packed: Callable[[Tensor], list[Tensor | None] | None],
                       probe: Tensor, tolerance: float = 1e-4) -> bool:
    """Whether the packed form of a map gives the plain form's outputs and input gradient on
    `probe` (each within `tolerance` of its largest entry). A packed form that raises (a
    torch whose private oneDNN ops changed) or returns None does not agree."""
    reference = outputs_and_input_gradient(plain, probe)

    def checked(x: Tensor) -> list[Tensor]:
        outs = packed(x)
        if outs is None or any(o is None for o in outs):
            raise _CannotRun
        return outs

    try:
        candidate = outputs_and_input_gradient(checked, probe)
    except (_CannotRun, RuntimeError, AttributeError, TypeError):
        return False
    return agree(reference, candidate, tolerance)


class _CannotRun(Exception):
    """The packed form returned None: it cannot run on this input."""
