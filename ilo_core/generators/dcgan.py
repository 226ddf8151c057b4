"""The embedded default generator: the DigiFace-1M DCGAN (PyTorch-tutorial layout, 64x64).

Stages (split point k sits before stage k):
    0: z [B, 100] -> 512 x 4 x 4      (ConvTranspose 4x4 on a 1x1 input, BN, ReLU)
    1: -> 256 x 8 x 8                   (ConvTranspose 4x4 stride 2, BN, ReLU)
    2: -> 128 x 16 x 16
    3: -> 64 x 32 x 32
    4: -> 3 x 64 x 64, tanh             (image in [-1, 1])

BatchNorm runs with its running statistics (eval mode), so it is folded into the
preceding transposed convolution at load time.

On CPU every stage runs as one oneDNN transposed convolution with its activation fused
and its weights prepacked, the input gradient too (`ilo_core.packed_conv`): forward +
input gradient of the whole generator 1.6-1.7x faster than the plain path below
(measured in turn). The packed path is checked against the plain one when the generator
is built, and is not used where it disagrees or cannot run.

The plain path (GPU, float64, or no oneDNN): stages 0 and 1 (inputs of 1x1 and 4x4
pixels, most of the weights) run as one matrix product and a col2im (`F.fold`), which on
CPU is 1.5-3x faster than torch's transposed-convolution kernels at these shapes (forward
+ input-gradient, measured); the larger maps of stages 2-4 keep those kernels. (A
sub-pixel rewrite of the stride-2 transposed convolutions did not pay either.)
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor, nn

from ilo_core.generators.base import SplitGenerator, State, Variables
from ilo_core.packed_conv import PackedConvolution, packed_form_agrees, packing_available

ASSET = Path(__file__).resolve().parent.parent.parent / "assets" / "weights" / "digiface_dcgan.safetensors"
BN_EPS = 1e-5
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


class DCGANGenerator(SplitGenerator):
    """Frozen DCGAN generator with split points before each of its 5 stages."""

    kind = "dcgan"
    resolution = 64
    num_layers = 5
    nz = 100

    def __init__(self, state_dict: dict[str, Tensor], packed: bool = True) -> None:
        """state_dict: the tutorial's; packed=False keeps to the plain path (for tests)."""
        super().__init__()
        conv_keys = ["main.0", "main.3", "main.6", "main.9", "main.12"]
        bn_keys = ["main.1", "main.4", "main.7", "main.10", None]
        for i, (ck, bk) in enumerate(zip(conv_keys, bn_keys)):
            w = state_dict[f"{ck}.weight"].float()
            cout = w.shape[1]
            if bk is None:
                scale, bias = torch.ones(cout), torch.zeros(cout)
            else:
                scale = state_dict[f"{bk}.weight"] / torch.sqrt(state_dict[f"{bk}.running_var"] + BN_EPS)
                bias = state_dict[f"{bk}.bias"] - state_dict[f"{bk}.running_mean"] * scale
            w = w * scale.view(1, -1, 1, 1)
            if self._runs_as_gemm(i):
                w = w.reshape(w.shape[0], -1).t()  # [Cout*16, Cin]: transposed_conv_gemm's layout
            self.register_buffer(f"weight{i}", w.contiguous())  # else [Cin, Cout, 4, 4]
            self.register_buffer(f"bias{i}", bias.float().contiguous())
        # derived constants (not saved or moved): None where packing is unavailable or disagrees
        self._packed: list[PackedConvolution] | None = None
        if packed and packing_available():
            self._packed = [PackedConvolution(functools.partial(self._conv_weight, i), functools.partial(self._bias, i),
                                              transposed=True, stride=self._stride_padding(i)[0],
                                              padding=self._stride_padding(i)[1],
                                              activation="tanh" if i == self.num_layers - 1 else "relu")
                            for i in range(self.num_layers)]
            probe = torch.randn(1, self.nz, generator=torch.Generator().manual_seed(0))
            if not packed_form_agrees(functools.partial(self._render_z, packed=False),
                                      functools.partial(self._render_z, packed=True), probe):
                warnings.warn("DCGAN: oneDNN-packed stages disagree with the plain ones or cannot run here; "
                              "using the plain path")
                self._packed = None
        self.freeze()

    @classmethod
    def load(cls, path: str | Path = ASSET, device: str | torch.device = "cpu", packed: bool = True) -> "DCGANGenerator":
        """Load the DigiFace DCGAN from a safetensors file of the tutorial's state_dict."""
        return cls(load_file(str(path)), packed=packed).to(device)

    @staticmethod
    def _input_size(split: int) -> int:
        """Width of stage `split`'s input map (1 for z; stage 5's input is the 64 px image)."""
        return 1 if split == 0 else 2 ** (split + 1)

    @classmethod
    def _runs_as_gemm(cls, split: int) -> bool:
        return cls._input_size(split) <= GEMM_MAX_INPUT

    @staticmethod
    def _stride_padding(split: int) -> tuple[int, int]:
        return (1, 0) if split == 0 else (2, 1)

    def _conv_weight(self, split: int) -> Tensor:
        """Stage `split`'s weight in conv_transpose2d's layout [Cin, Cout, 4, 4] (a copy for the matrix-product stages)."""
        w = getattr(self, f"weight{split}")
        if self._runs_as_gemm(split):
            return w.t().reshape(w.shape[1], -1, 4, 4)
        return w

    def _bias(self, split: int) -> Tensor:
        return getattr(self, f"bias{split}")

    def _render_z(self, z: Tensor, packed: bool) -> list[Tensor | None]:
        """[image] from z [B, 100] through the packed stages or the plain ones ([None] where a
        packed stage cannot run): the two forms that `packed_form_agrees` compares."""
        x = z[:, :, None, None]
        for k in range(self.num_layers):
            out = self._packed[k](x) if packed and self._packed is not None else self._advance_plain(k, x)
            if out is None:
                return [None]
            x = out
        return [x]

    @property
    def device(self) -> torch.device:
        return self.weight0.device

    def sample_variables(self, batch: int, generator: torch.Generator | None = None) -> Variables:
        return {"latent": torch.randn(batch, self.nz, generator=generator, device=self.device)}

    def variable_group(self, name: str) -> str:
        if name != "latent":
            raise KeyError(name)
        return "latents"

    def active_variables(self, split: int, round_index: int = 0) -> list[str]:
        return ["latent"] if split == 0 else []

    def advance(self, split: int, state: State, variables: Variables) -> State:
        self._check_split(split)
        x = variables["latent"][:, :, None, None] if split == 0 else state["features"]  # z: [B, 100, 1, 1]
        out = None if self._packed is None else self._packed[split](x)  # None off a float32 CPU
        return {"features": self._advance_plain(split, x) if out is None else out}

    def _advance_plain(self, split: int, x: Tensor) -> Tensor:
        """Stage `split` with torch's kernels: x [B, Cin, S, S] -> [B, Cout, 2S, 2S] (stage 0: 1 -> 4)."""
        weight, bias = getattr(self, f"weight{split}"), getattr(self, f"bias{split}")
        stride, padding = self._stride_padding(split)
        if self._runs_as_gemm(split):
            x = transposed_conv_gemm(x, weight, bias, 4, stride, padding, self._input_size(split + 1))
        else:
            x = F.conv_transpose2d(x, weight, bias, stride=stride, padding=padding)
        return torch.tanh(x) if split == self.num_layers - 1 else F.relu(x)

    def to_image(self, state: State) -> Tensor:
        return state["features"]

    def describe(self) -> dict[str, object]:
        info = super().describe()
        info["state_shapes"] = [(self.nz,), (512, 4, 4), (256, 8, 8), (128, 16, 16), (64, 32, 32)]
        return info


class TutorialDCGAN(DCGANGenerator):
    """The straightforward implementation, for tests and the benchmark's "before" numbers:
    the PyTorch tutorial's ConvTranspose2d / BatchNorm2d (eval) / ReLU modules, BN not folded."""

    def __init__(self, state_dict: dict[str, Tensor], packed: bool = False) -> None:
        super().__init__(state_dict, packed=False)  # its own modules below: nothing to pack
        self.stages = nn.ModuleList()
        for i in range(self.num_layers):
            w = state_dict[f"main.{3 * i}.weight"].float()
            conv = nn.ConvTranspose2d(w.shape[0], w.shape[1], 4, 1 if i == 0 else 2, 0 if i == 0 else 1, bias=False)
            conv.weight.data.copy_(w)
            layers: list[nn.Module] = [conv]
            if i < self.num_layers - 1:
                bn = nn.BatchNorm2d(w.shape[1])
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(bn, name).data.copy_(state_dict[f"main.{3 * i + 1}.{name}"].float())
                layers += [bn, nn.ReLU()]
            else:
                layers.append(nn.Tanh())
            self.stages.append(nn.Sequential(*layers))
        self.freeze()

    def advance(self, split: int, state: State, variables: Variables) -> State:
        self._check_split(split)
        x = variables["latent"][:, :, None, None] if split == 0 else state["features"]
        return {"features": self.stages[split](x)}
