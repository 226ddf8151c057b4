"""Frozen convolution + ReLU with oneDNN-prepacked weights, for the LPIPS trunk on CPU.

`F.conv2d` on CPU hands oneDNN (or its own im2col path) the plain weight on every call,
and the ReLU after it is a separate pass over the output. Here the weight is reordered
once into oneDNN's blocked layout, the ReLU is fused into the convolution, and the input
gradient (a stride-1 'same' convolution with the flipped, transposed weight) is prepacked
too. LPIPS forward + input-gradient + distance on this project's 2-core CPU, batch 1,
plain channels-last modules -> packed (ms, timed in turn): alex 64 px 9.6 -> 7.1,
alex 256 px 50.8 -> 47.0, vgg 64 px 70.7 -> 51.1, vgg 256 px 671 -> 645.

It uses torch's `mkldnn::_reorder_convolution_weight` and `mkldnn::_convolution_pointwise`
(the ops torch.compile's CPU backend emits). They are not public API, so `pack_conv_relu`
returns None where they are missing, and callers check the result against the plain
modules before using it (see `LPIPSNetwork.pack_convolutions`). Anything other than a
float32 CPU tensor takes the plain path.
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable


def packing_available() -> bool:
    """Whether this torch build has oneDNN and the two ops this module calls."""
    return (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
            and hasattr(torch.ops.mkldnn, "_reorder_convolution_weight"))


def _eligible(conv: nn.Module) -> bool:
    """A stride-1, undilated, ungrouped convolution with 'same' padding and a bias."""
    return (isinstance(conv, nn.Conv2d) and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.bias is not None and conv.kernel_size[0] == conv.kernel_size[1]
            and conv.padding == (conv.kernel_size[0] // 2,) * 2 and conv.kernel_size[0] % 2 == 1)


class _PackedConvReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, layer: "PackedConvReLU", weights: tuple[Tensor, Tensor]) -> Tensor:
        out = torch.ops.mkldnn._convolution_pointwise(
            x.contiguous(memory_format=torch.channels_last), weights[0], layer.conv.bias,
            layer.padding, [1, 1], [1, 1], 1, "relu", [], "")
        ctx.save_for_backward(out)
        ctx.layer, ctx.backward_weight = layer, weights[1]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        (out,) = ctx.saved_tensors
        grad = torch.ops.aten.threshold_backward(grad.contiguous(memory_format=torch.channels_last), out, 0)
        grad_x = torch.ops.mkldnn._convolution_pointwise(grad, ctx.backward_weight, None, ctx.layer.padding,
                                                         [1, 1], [1, 1], 1, "none", [], "")
        return grad_x, None, None


class PackedConvReLU(nn.Module):
    """relu(conv(x)) for a frozen stride-1 'same' Conv2d; x [B, Cin, H, W] -> [B, Cout, H, W].

    oneDNN's blocked weight layout depends on the input's shape (a layout packed for
    another shape is reordered again on every call, which is slower than no packing), so
    the packed weights are made on the first call for each input shape, up to MAX_SHAPES
    shapes; further shapes take the plain path. The packed weights are derived constants,
    read-only once made; a lock guards their making, so one module serves many threads.
    """

    MAX_SHAPES = 4

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv
        self.padding = list(conv.padding)
        self._packed: dict[tuple[int, ...], tuple[Tensor, Tensor]] = {}  # input shape -> (forward, backward)
        self._lock = threading.Lock()

    def _weights_for(self, shape: tuple[int, ...]) -> tuple[Tensor, Tensor] | None:
        with self._lock:
            if shape not in self._packed and len(self._packed) < self.MAX_SHAPES:
                weight = self.conv.weight.detach().contiguous()
                b, cin, h, w = shape
                flipped = weight.transpose(0, 1).flip(2, 3).contiguous()  # the input gradient's convolution
                self._packed[shape] = (
                    torch.ops.mkldnn._reorder_convolution_weight(weight, self.padding, [1, 1], [1, 1], 1, [b, cin, h, w]),
                    torch.ops.mkldnn._reorder_convolution_weight(flipped, self.padding, [1, 1], [1, 1], 1,
                                                                 [b, weight.shape[0], h, w]))
            return self._packed.get(shape)

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type == "cpu" and x.dtype == torch.float32 == self.conv.weight.dtype:
            weights = self._weights_for(tuple(x.shape))
            if weights is not None:
                return _PackedConvReLUFunction.apply(x, self, weights)
        return F.relu(self.conv(x))


def pack_conv_relu(layers: list[nn.Module]) -> list[nn.Module] | None:
    """The same layers with each eligible (Conv2d, ReLU) pair fused into a PackedConvReLU,
    or None if this torch cannot pack (or there was nothing to pack)."""
    if not packing_available():
        return None
    out: list[nn.Module] = []
    packed = 0
    i = 0
    while i < len(layers):
        layer = layers[i]
        if _eligible(layer) and i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU):
            out.append(PackedConvReLU(layer))
            packed += 1
            i += 2
        else:
            out.append(layer)
            i += 1
    return out if packed else None
