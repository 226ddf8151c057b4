"""An inverse problem as the CLI and the app pose it: operator, observation, clean image.

"simulate": the clean image is given and the observation is synthesized from it.
"observed": the degraded image itself is given (true-error metrics are then unknown).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ilo_core.accelerate import accelerate
from ilo_core.perceptual.distance import PerceptualDistance
from ilo_core.physics.metrics import measurement_mse, hole_mse01, mse01, paste_observed, psnr_from_mse
from ilo_core.physics.operators import (TASKS, CompressedSensing, Denoising, Inpainting, Operator, RandomInpainting,
                                        SuperResolution)


def build_operator(task: str, size: int, *, mask: Tensor | None = None, observed: float = 0.1,
                   factor: int = 4, sigma: float = 25.0, measurements: float = 0.1,
                   seed: int = 0) -> Operator:
    """The operator for a task name of the CLI / app, with its parameters.

    mask: [H, W] bool, True = missing pixels (inpaint); observed / measurements: fractions
    in (0, 1]; factor: integer; sigma: 0-255 units.
    """
    if task == "inpaint":
        if mask is None:
            raise ValueError("inpainting needs a mask (white = missing pixels)")
        if tuple(mask.shape[-2:]) != (size, size):
            raise ValueError(f"mask is {tuple(mask.shape[-2:])}, expected {(size, size)}")
        return Inpainting.from_missing(mask)
    if task == "random-inpaint":
        return RandomInpainting(size, observed, seed)
    if task == "super-resolution":
        return accelerate(SuperResolution(factor, size))  # the matrix form where it is faster
    if task == "denoise":
        return Denoising(sigma)
    if task == "compressed-sensing":
        return CompressedSensing((3, size, size), measurements, seed)
    raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


@dataclass
class Problem:
    """operator, observation y = noise(A(x)), and the clean x when known ([1, 3, R, R] in [-1, 1])."""

    task: str
    operator: Operator
    observation: Tensor
    clean: Tensor | None

    def observation_image(self) -> Tensor:
        """What the observation looks like, [1, 3, R, R] in [-1, 1]."""
        with torch.no_grad():
            return self.operator.observation_image(self.observation).clamp(-1, 1)


def simulate(task: str, clean: Tensor, *, seed: int = 0, **params) -> Problem:
    """Degrade a clean image [1, 3, R, R] in [-1, 1] with the task's operator (seeded noise)."""
    operator = build_operator(task, clean.shape[-1], seed=seed, **params).to(clean.device)
    with torch.no_grad():
        y = operator(clean, torch.Generator(device=clean.device).manual_seed(seed + 1))
    return Problem(task, operator, y, clean)


def from_observation(task: str, image: Tensor, size: int, **params) -> Problem:
    """An already degraded image [1, 3, h, w] in [-1, 1] as the observation (`params` as build_operator).

    super-resolution: `image` is the low-resolution image (resized to size/factor);
    inpaint: needs `mask` (True = missing); denoise: the noisy image at full size.
    """
    if task in ("random-inpaint", "compressed-sensing"):
        raise ValueError(f"{task} observations cannot be given as an image: simulate them from a clean image")
    operator = build_operator(task, size, **params).to(image.device)
    if isinstance(operator, SuperResolution):
        low = size // operator.factor
        if image.shape[-1] != low:
            image = torch.nn.functional.interpolate(image, size=(low, low), mode="bicubic",
                                                    antialias=True, align_corners=False).clamp(-1, 1)
        y = image
    else:
        if image.shape[-1] != size:
            raise ValueError(f"the observation must be {size}x{size} for this generator")
        y = operator.A(image)
    return Problem(task, operator, y, None)


def evaluate(result: Tensor, problem: Problem, lpips_distance: PerceptualDistance | None = None) -> dict:
    """Report of a result [1, 3, R, R] in [-1, 1]: measurement MSE, and against the clean
    image (when known) MSE and PSNR in [0, 1] units and LPIPS (alex)."""
    return evaluate_batch(result, problem, lpips_distance)[0]


def evaluate_batch(result: Tensor, problem: Problem, lpips_distance: PerceptualDistance | None = None) -> list[dict]:
    """`evaluate` for each item of a batch of results [B, 3, R, R] of a batched problem.

    For inpainting (box, painted or random pixels) also the figures inside the hole:
    `hole_psnr` over the missing pixels, `hole_lpips` between the clean image and the result
    with the observed pixels pasted back (so only the hole differs), and the whole-image
    `pasted_mse` / `pasted_psnr` of that pasted result.
    """
    with torch.no_grad():
        meas = measurement_mse(problem.operator.A(result), problem.observation)
        if problem.clean is None:
            return [{"measurement_mse": float(m), "mse": None, "psnr": None, "lpips": None} for m in meas]
        mse = mse01(result, problem.clean)
        lp = lpips_distance or PerceptualDistance("alex", size=None, device=result.device)
        dist = lp(result.clamp(-1, 1), problem.clean)
        records = [{"measurement_mse": float(m), "mse": float(e), "psnr": psnr_from_mse(float(e)), "lpips": float(d)}
                   for m, e, d in zip(meas, mse, dist)]
        if isinstance(problem.operator, Inpainting):
            keep = problem.operator.keep
            pasted = paste_observed(result.clamp(-1, 1), problem.clean, keep)
            hole = hole_mse01(result, problem.clean, ~keep)
            hole_lp, pasted_mse = lp(pasted, problem.clean), mse01(pasted, problem.clean)
            for r, h, hl, pm in zip(records, hole, hole_lp, pasted_mse):
                r.update(hole_psnr=psnr_from_mse(float(h)), hole_lpips=float(hl), pasted_mse=float(pm),
                         pasted_psnr=psnr_from_mse(float(pm)))
    return records
