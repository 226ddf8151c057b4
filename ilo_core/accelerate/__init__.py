"""Every speed path of the engine, applied by one call: `accelerate(module)`.

The models (`ilo_core.generators`, `ilo_core.perceptual.distance.LPIPSNetwork`, the operators) are
plain, as in rosinality's and the `lpips` package's code; this package holds the faster
forms of the same maps:

| module | fast form | file |
| --- | --- | --- |
| `DCGANGenerator` | BatchNorm folded; oneDNN-packed transposed convolutions with fused activations on CPU, else matrix-product stages for 1x1 / 4x4 inputs | `dcgan.py`, `packed_conv.py` |
| `StyleGAN2Generator` | modulated convolutions by activation scaling, gains fused | `stylegan2.py` |
| `LPIPSNetwork` | channels-last, the trunk as one autograd node over packed convolutions (CPU), the fixed-target distance as one node | `lpips.py`, `packed_trunk.py` |
| `SuperResolution` | the bicubic resizes as precomputed matrices | `resize.py` |
| the process | glibc malloc keeps freed memory (`set_up_process`) | `memory.py` |

Each fast form is checked against the plain one when it is built (generators and LPIPS on
a probe input, outputs and input gradients) and falls back with a warning where it
disagrees or cannot run. One switch turns all of it off: `ILO_REFERENCE=1` in the
environment (the CLI's, the page's, the benchmark's and the evaluation's `--reference`
set it), or `reference=True` where a module is built.
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import nn

from ilo_core.accelerate.dcgan import accelerate_dcgan
from ilo_core.accelerate.lpips import AcceleratedLPIPS
from ilo_core.accelerate.memory import keep_freed_memory
from ilo_core.accelerate.packed_conv import agree, outputs_and_input_gradient
from ilo_core.accelerate.resize import accelerate_super_resolution
from ilo_core.accelerate.stylegan2 import accelerate_stylegan2
from ilo_core.generators.dcgan import DCGANGenerator
from ilo_core.generators.stylegan2 import StyleGAN2Generator
from ilo_core.perceptual.network import LPIPSNetwork
from ilo_core.physics.operators import SuperResolution

REFERENCE_ENV = "ILO_REFERENCE"
AGREEMENT = 1e-4  # relative: the fast form's probe output and input gradient vs the plain one's


def reference_requested() -> bool:
    """Whether the environment asks for the plain (reference) implementations: ILO_REFERENCE=1."""
    return os.environ.get(REFERENCE_ENV, "0") not in ("", "0")


def use_reference(flag: bool) -> None:
    """An entry point's `--reference`: set ILO_REFERENCE=1 for this process when `flag`."""
    if flag:
        os.environ[REFERENCE_ENV] = "1"


def accelerate(module: nn.Module, *, reference: bool | None = None) -> nn.Module:
    """The fast form of a freshly built module (see the module notes), or the module itself
    when there is none or `reference` (default: the ILO_REFERENCE switch) is set.

    Generators are changed in place (their layers swapped for faster ones that share the
    weights) and returned: call it once, where the module is built, before anyone uses it.
    """
    if reference_requested() if reference is None else reference:
        return module
    if isinstance(module, DCGANGenerator):
        return _checked(module, accelerate_dcgan)
    if isinstance(module, StyleGAN2Generator):
        return _checked(module, accelerate_stylegan2)
    if isinstance(module, LPIPSNetwork):
        return AcceleratedLPIPS(module)
    if isinstance(module, SuperResolution):
        return accelerate_super_resolution(module)
    return module


def _checked(generator: nn.Module, make_fast) -> nn.Module:
    """make_fast(generator) in place, kept only if it gives the plain layers' probe outputs and
    latent gradient (within AGREEMENT); else the plain layers are put back, with a warning."""
    originals = [(parent, name, child) for parent in generator.modules() for name, child in parent.named_children()]
    dtype = next(generator.parameters()).dtype
    variables = {k: v.to(dtype) for k, v in
                 generator.sample_variables(1, torch.Generator(device=generator.device).manual_seed(0)).items()}
    plain = _probe(generator, variables)
    fast = make_fast(generator)
    try:
        agrees = agree(plain, _probe(fast, variables), AGREEMENT)
    except (RuntimeError, AttributeError, TypeError):
        agrees = False
    if agrees:
        return fast
    warnings.warn(f"{type(generator).__name__}: the accelerated layers disagree with the plain ones here; "
                  f"using the plain model")
    for parent, name, child in originals:
        setattr(parent, name, child)
    return generator


def _probe(generator: nn.Module, variables: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The state after the first five stages (the image for smaller generators) and the
    gradient of a fixed non-uniform weighting of it with respect to the latent."""
    depth = min(generator.num_layers, 5)

    def outputs(latent: torch.Tensor) -> list[torch.Tensor]:
        v = {**variables, "latent": latent}
        return [generator.render(v)] if depth == generator.num_layers else list(generator.state_at(depth, v).values())

    return outputs_and_input_gradient(outputs, variables["latent"])


def set_up_process() -> bool:
    """What an entry point (the page, the CLI, the benchmark, the evaluation) does first:
    glibc malloc keeps freed memory (`memory.keep_freed_memory`), unless the reference switch
    is set. Returns whether the malloc tuning is in effect."""
    if reference_requested():
        return False
    return keep_freed_memory()
