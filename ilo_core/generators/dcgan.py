"""The embedded default generator: the DigiFace-1M DCGAN (PyTorch-tutorial layout, 64x64).

Stages (split point k sits before stage k), each the tutorial's modules:
    0: z [B, 100] -> 512 x 4 x 4      (ConvTranspose2d 4x4 on a 1x1 input, BatchNorm2d, ReLU)
    1: -> 256 x 8 x 8                   (ConvTranspose2d 4x4 stride 2, BatchNorm2d, ReLU)
    2: -> 128 x 16 x 16
    3: -> 64 x 32 x 32
    4: -> 3 x 64 x 64, Tanh             (image in [-1, 1])

BatchNorm runs with its running statistics (eval mode). This is the plain model;
`ilo_core.accelerate` swaps each stage for a faster form of the same map at load.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from ilo_core.generators.base import FaceFrame, SplitGenerator, State, Tuning, Variables

ASSET = Path(__file__).resolve().parent.parent.parent / "assets" / "weights" / "digiface_dcgan.safetensors"


def tutorial_stage(state_dict: dict[str, Tensor], i: int, last: bool) -> nn.Sequential:
    """Stage i of the tutorial's `main` Sequential (its modules 3i .. 3i + 2) with its weights."""
    w = state_dict[f"main.{3 * i}.weight"].float()  # [Cin, Cout, 4, 4]
    conv = nn.ConvTranspose2d(w.shape[0], w.shape[1], 4, 1 if i == 0 else 2, 0 if i == 0 else 1, bias=False)
    conv.weight.data.copy_(w)
    if last:
        return nn.Sequential(conv, nn.Tanh())
    bn = nn.BatchNorm2d(w.shape[1])
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(bn, name).data.copy_(state_dict[f"main.{3 * i + 1}.{name}"].float())
    return nn.Sequential(conv, bn, nn.ReLU())


class DCGANGenerator(SplitGenerator):
    """Frozen DCGAN generator with split points before each of its 5 stages."""

    kind = "dcgan"
    resolution = 64
    num_layers = 5
    nz = 100
    nonnegative_state = True  # stages 0-3 end in BatchNorm + ReLU
    #: DigiFace faces fill more of the frame than FFHQ's: `python -m ilo_core.evaluation.studies face_frame`
    #: (256 samples, dlib found 194 faces) gives FFHQ's square 1.339 times the image side
    face_frame = FaceFrame(side=1.339, x=0.499, y=0.506)
    #: measured on this checkpoint (the embedded DigiFace DCGAN): docs/tuning.md
    tuning = Tuning(radii={"latents": (None, None, None, None), "state": (None, 300.0, 600.0, 1200.0)},
                    lpips=False, lpips_net="alex", geodesic_weight=0.0, fill_starts=6, fill_rounds=2,
                    fill_detail=0.7, hole_cells=8)

    def __init__(self, state_dict: dict[str, Tensor]) -> None:
        """state_dict: the tutorial's (`main.0.weight`, `main.1.running_mean`, ...)."""
        super().__init__()
        self.stages = nn.ModuleList(tutorial_stage(state_dict, i, i == self.num_layers - 1)
                                    for i in range(self.num_layers))
        self.freeze()

    @classmethod
    def load(cls, path: str | Path = ASSET, device: str | torch.device = "cpu") -> "DCGANGenerator":
        """The plain DigiFace DCGAN from a safetensors file of the tutorial's state_dict
        (`ilo_core.generators.load_generator("default")` also accelerates it)."""
        return cls(load_file(str(path))).to(device)

    @property
    def device(self) -> torch.device:
        return next(self.buffers()).device

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
        return {"features": self.stages[split](x)}

    def to_image(self, state: State) -> Tensor:
        return state["features"]

    def describe(self) -> dict[str, object]:
        info = super().describe()
        info["state_shapes"] = [(self.nz,), (512, 4, 4), (256, 8, 8), (128, 16, 16), (64, 32, 32)]
        return info
