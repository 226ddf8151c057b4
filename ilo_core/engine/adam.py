"""Adam for the solver's few leaf tensors, with the learning rate given at each step.

The update is torch.optim.Adam's (default betas and eps, bias-corrected, no weight decay),
operation for operation, so the iterates are identical. It exists because constructing a
torch.optim optimizer imports torch._dynamo on first use (seconds, paid by every CLI solve and
by the app's first run) and wraps each step in profiling and hook machinery (docs/benchmark.md).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class Adam:
    """In-place Adam over `params` (tensors with requires_grad); reads and then clears .grad."""

    def __init__(self, params: list[Tensor], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params = params
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.steps = [0] * len(params)  # per tensor, as torch counts them
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]

    @torch.no_grad()
    def step(self, lr: float) -> None:
        """One update with learning rate `lr`; parameters without a gradient are skipped."""
        for i, (p, m, v) in enumerate(zip(self.params, self.exp_avg, self.exp_avg_sq)):
            if p.grad is None:
                continue
            self.steps[i] += 1
            bias_correction1 = 1 - self.beta1 ** self.steps[i]
            bias_correction2_sqrt = math.sqrt(1 - self.beta2 ** self.steps[i])
            g = p.grad
            m.lerp_(g, 1 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            p.addcdiv_(m, (v.sqrt() / bias_correction2_sqrt).add_(self.eps), value=-lr / bias_correction1)
            p.grad = None
