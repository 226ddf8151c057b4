"""Forward operators: images x [B, 3, H, W] in [-1, 1] -> measurements y.

Shaped like deepinv's physics. Every operator is an `Operator`, which declares what it can do:
- `A(x)`, differentiable; `linear` and, for the linear ones, `A_adjoint(y)`;
- `noise_model`: the measurement noise (a `GaussianNoise`, or None for noiseless), used
  both to make observations (`forward(x, generator) = noise(A(x))`) and for the solver's
  stochastic noise addition, every draw from an explicit `torch.Generator`;
- `has_image_view`: `perceptual_view(y, current)` gives the image LPIPS compares
  ([B, 3, H, W] in [-1, 1]); `perceptual_view_is_fixed` when it does not depend on `current`;
- `observation_image(y)` renders what an observation looks like.
Parameters are buffers and move with `.to()`. `as_operator` wraps any object with an `.A`
method (a user's differentiable map) as an Operator that declares nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TASKS = ("inpaint", "random-inpaint", "super-resolution", "denoise", "compressed-sensing")


def _rng(seed: int | torch.Generator | None) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(0 if seed is None else int(seed))


def sigma_to_unit(sigma_255: float) -> float:
    """A noise std in 0-255 pixel units -> the same std for images in [-1, 1]."""
    return float(sigma_255) * 2.0 / 255.0


class GaussianNoise:
    """Additive white Gaussian noise of std `std` (in [-1, 1] image units), deepinv-style.

    The one definition used both to make an observation and for stochastic noise addition
    during a solve; every draw comes from an explicit `torch.Generator`, so a seeded solve
    is reproducible bit for bit.
    """

    def __init__(self, std: float) -> None:
        self.std = float(std)

    def sample(self, like: Tensor, generator: torch.Generator | None) -> Tensor:
        """Noise of `like`'s shape, dtype and device."""
        return self.std * torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)

    def __call__(self, y: Tensor, generator: torch.Generator | None, clip: bool = True) -> Tensor:
        """y plus noise, clipped to [-1, 1] when `clip` (as a saved image would be)."""
        out = y + self.sample(y, generator)
        return out.clamp(-1, 1) if clip else out


class Operator(nn.Module):
    """Base class. Subclasses implement `A`; linear ones also `A_adjoint`; the class
    attributes below declare the rest (see the module notes)."""

    linear: bool = True
    task: str = "custom"
    noise_model: GaussianNoise | None = None   # None: noiseless measurements
    has_image_view: bool = False               # perceptual_view gives an image
    perceptual_view_is_fixed: bool = False     # ... that does not depend on `current`

    def A(self, x: Tensor) -> Tensor:  # noqa: N802 (the field's notation)
        raise NotImplementedError

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        raise NotImplementedError(f"{type(self).__name__} has no adjoint")

    def noise(self, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """y with the measurement noise (`noise_model`) drawn from `generator`; y itself when noiseless."""
        return y if self.noise_model is None else self.noise_model(y, generator)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.noise(self.A(x), generator)

    def observation_image(self, y: Tensor) -> Tensor:
        """What the observation looks like, [B, 3, H, W] in [-1, 1]."""
        raise NotImplementedError

    def perceptual_view(self, y: Tensor, current: Tensor) -> Tensor:
        """The image LPIPS compares for measurements y, given the current generation
        (operators with `has_image_view` only)."""
        raise NotImplementedError(f"{type(self).__name__} has no image view")


class FunctionOperator(Operator):
    """A user's differentiable measurement map (any object with `.A`), declaring nothing else."""

    linear = False

    def __init__(self, source: object) -> None:
        super().__init__()
        self.source = source

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        return self.source.A(x)


def as_operator(operator: object) -> Operator:
    """An Operator as it is; any other object with a callable `.A` wrapped as a FunctionOperator."""
    if isinstance(operator, Operator):
        return operator
    if not callable(getattr(operator, "A", None)):
        raise TypeError(f"{type(operator).__name__} is not an operator: it has no callable .A")
    return FunctionOperator(operator)


class Inpainting(Operator):
    """Keep the observed pixels: A(x) = x * keep, keep [1, 1, H, W] bool (True = observed)."""

    task = "inpaint"

    def __init__(self, keep: Tensor) -> None:
        super().__init__()
        keep = torch.as_tensor(keep).bool()
        while keep.ndim < 4:
            keep = keep[None]
        if keep.shape[0] != 1 or keep.shape[1] != 1:
            raise ValueError(f"mask must be [H, W], got shape {tuple(keep.shape)}")
        if not keep.any():
            raise ValueError("the mask hides every pixel: nothing is observed")
        self.register_buffer("keep", keep)

    @classmethod
    def from_missing(cls, missing: Tensor) -> "Inpainting":
        """From a mask that is True where pixels are missing (painted)."""
        missing = torch.as_tensor(missing).bool()
        if not missing.any():
            raise ValueError("the mask is empty: paint the region to reconstruct")
        return cls(~missing)

    @classmethod
    def box(cls, size: int, top: int, left: int, height: int, width: int) -> "Inpainting":
        missing = torch.zeros(size, size, dtype=torch.bool)
        missing[top:top + height, left:left + width] = True
        return cls.from_missing(missing)

    @property
    def observed_fraction(self) -> float:
        return float(self.keep.float().mean())

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        return x * self.keep

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        return y * self.keep

    def observation_image(self, y: Tensor) -> Tensor:
        hole = torch.tensor([0.2, -0.6, 0.6], device=y.device).view(1, 3, 1, 1)  # a muted violet
        return torch.where(self.keep, y, hole.expand_as(y))

    has_image_view = True

    def perceptual_view(self, y: Tensor, current: Tensor) -> Tensor:
        """The paper's "filled" target: observed pixels, holes from the current generation."""
        return torch.where(self.keep, y, current.detach())


class RandomInpainting(Inpainting):
    """Observe a random fraction p of the pixels (all channels of a pixel together)."""

    task = "random-inpaint"

    def __init__(self, size: int, fraction: float, seed: int | torch.Generator | None = 0) -> None:
        if not 0 < fraction <= 1:
            raise ValueError(f"observed fraction must be in (0, 1], got {fraction}")
        n = size * size
        count = max(1, round(fraction * n))
        keep = torch.zeros(n, dtype=torch.bool)
        keep[torch.randperm(n, generator=_rng(seed))[:count]] = True
        super().__init__(keep.view(size, size))


def bicubic_downsample(x: Tensor, factor: int) -> Tensor:
    """Antialiased bicubic (a = -0.5, PIL's BICUBIC) downsampling by an integer factor."""
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(h // factor, w // factor), mode="bicubic", antialias=True, align_corners=False)


class SuperResolution(Operator):
    """A(x) = antialiased bicubic downsampling by `factor` (which must divide the size)."""

    task = "super-resolution"

    def __init__(self, factor: int, size: int) -> None:
        super().__init__()
        if int(factor) != factor or factor < 2:
            raise ValueError(f"super-resolution factor must be an integer >= 2, got {factor}")
        if size % factor or size // factor < 1:
            raise ValueError(f"factor {factor} does not divide the image size {size}")
        self.factor, self.size = int(factor), int(size)

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        return bicubic_downsample(x, self.factor)

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        return linear_adjoint(self.A, y, (y.shape[0], y.shape[1], self.size, self.size))

    def observation_image(self, y: Tensor) -> Tensor:
        return F.interpolate(y, scale_factor=self.factor, mode="nearest")

    has_image_view = perceptual_view_is_fixed = True

    def perceptual_view(self, y: Tensor, current: Tensor) -> Tensor:
        """The bicubic upsampling of y, clamped to [-1, 1]."""
        return F.interpolate(y, scale_factor=self.factor, mode="bicubic", align_corners=False).clamp(-1, 1)


class Denoising(Operator):
    """A = identity; Gaussian noise of known std `sigma` (0-255 units), clipped to [-1, 1]."""

    task = "denoise"

    def __init__(self, sigma: float) -> None:
        super().__init__()
        if not 0 <= sigma <= 255:
            raise ValueError(f"noise sigma must be in [0, 255], got {sigma}")
        self.sigma = float(sigma)
        self.noise_model = GaussianNoise(self.std)  # the known measurement noise (and SNA's draws)

    @property
    def std(self) -> float:
        """The noise std in [-1, 1] image units."""
        return sigma_to_unit(self.sigma)

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        return x

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        return y

    def observation_image(self, y: Tensor) -> Tensor:
        return y

    has_image_view = perceptual_view_is_fixed = True

    def perceptual_view(self, y: Tensor, current: Tensor) -> Tensor:
        return y


class CompressedSensing(Operator):
    """Partial circulant measurements with random signs, by FFT, O(n) memory.

    y = keep_m(g (*) (s . x)) over the flattened image (n = C*H*W): s random signs, g a
    Gaussian filter with entries N(0, 1/m), (*) circular convolution, keep_m m random
    entries (sorted). y: [B, m].
    """

    task = "compressed-sensing"

    def __init__(self, shape: tuple[int, int, int], fraction: float, seed: int | torch.Generator | None = 0) -> None:
        super().__init__()
        if not 0 < fraction <= 1:
            raise ValueError(f"measurement fraction must be in (0, 1], got {fraction}")
        self.shape = tuple(int(s) for s in shape)
        n = math.prod(self.shape)
        m = max(1, round(fraction * n))
        rng = _rng(seed)
        signs = torch.randint(0, 2, (n,), generator=rng).float().mul_(2).sub_(1)
        kernel = torch.randn(n, generator=rng) / math.sqrt(m)
        index = torch.randperm(n, generator=rng)[:m].sort().values
        self.register_buffer("signs", signs)
        self.register_buffer("kernel_fft", torch.fft.rfft(kernel))
        self.register_buffer("index", index)
        self.n, self.m = n, m

    def dense_matrix(self) -> Tensor:
        """The explicit [m, n] matrix (small n only, for tests)."""
        kernel = torch.fft.irfft(self.kernel_fft, n=self.n)
        rows = (self.index[:, None] - torch.arange(self.n)[None, :]) % self.n
        return kernel[rows] * self.signs[None, :]

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        flat = x.reshape(x.shape[0], -1) * self.signs
        conv = torch.fft.irfft(torch.fft.rfft(flat) * self.kernel_fft, n=self.n)
        return conv[:, self.index]

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        full = y.new_zeros(y.shape[0], self.n)
        full[:, self.index] = y
        corr = torch.fft.irfft(torch.fft.rfft(full) * self.kernel_fft.conj(), n=self.n)
        return (corr * self.signs).reshape(y.shape[0], *self.shape)

    def observation_image(self, y: Tensor) -> Tensor:
        """The normalized back-projection A^T y (a visual hint, not a reconstruction)."""
        back = self.A_adjoint(y)
        scale = back.flatten(1).abs().amax(1).clamp_min(1e-8).view(-1, 1, 1, 1)
        return back / scale


def linear_adjoint(a: Callable[[Tensor], Tensor], y: Tensor, x_shape: tuple[int, ...]) -> Tensor:
    """A^T y for a linear map `a`, through autograd."""
    with torch.enable_grad():
        x = torch.zeros(x_shape, device=y.device, dtype=y.dtype, requires_grad=True)
        (grad,) = torch.autograd.grad(a(x), x, grad_outputs=y)
    return grad
