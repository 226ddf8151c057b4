"""Image I/O: files and PIL images <-> tensors [B, 3, H, W] in [-1, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from ilo_core.atomic import atomic_path

MAX_PIXELS = 40_000_000  # decoded pixel limit: larger uploads are refused, not decoded


class ImageError(ValueError):
    """An image could not be used; the message says why in one line."""


def open_image(source: str | Path | Image.Image | np.ndarray) -> Image.Image:
    """Open a file (or accept an array / PIL image) as an 8-bit RGB PIL image.

    Handles grayscale, palette, RGBA (composited on white), 16-bit and CMYK inputs and
    EXIF orientation. Raises ImageError for unreadable, corrupt or too-large images.
    """
    if isinstance(source, np.ndarray):
        source = array_to_pil(source)
    if isinstance(source, Image.Image):
        image = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"no such image file: {path}")
        try:
            image = Image.open(path)
            if image.width * image.height > MAX_PIXELS:
                raise ImageError(f"{path.name} is {image.width}x{image.height}: over the "
                                 f"{MAX_PIXELS // 1_000_000} megapixel limit")
            image.load()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            if isinstance(err, ImageError):
                raise
            raise ImageError(f"{path.name} is not a readable image ({type(err).__name__})") from None
    if image.width * image.height > MAX_PIXELS:
        raise ImageError(f"image is {image.width}x{image.height}: over the {MAX_PIXELS // 1_000_000} megapixel limit")
    if image.width < 8 or image.height < 8:
        raise ImageError(f"image is {image.width}x{image.height}: too small (at least 8x8)")
    image = ImageOps.exif_transpose(image)
    return to_rgb(image)


def array_to_pil(array: np.ndarray) -> Image.Image:
    """A numpy image (H x W, H x W x 3/4; uint8, uint16 or float in [0, 1]) -> PIL."""
    a = np.asarray(array)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ImageError(f"not an image array: shape {a.shape}")
    if a.dtype == np.uint16:
        a = (a / 257).round().astype(np.uint8)
    elif a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ImageError("the image has NaN or infinite values")
        a = (a.clip(0, 1) * 255).round().astype(np.uint8) if a.max() <= 1.0 else a.clip(0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = a.clip(0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return Image.fromarray(a)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB (alpha composited on white; 16-bit scaled to 8-bit)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if a.max() > 255 else 255.0
        image = Image.fromarray((a / scale * 255).clip(0, 255).round().astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(canvas, rgba)
    return image.convert("RGB")


def center_box(image: Image.Image) -> tuple[int, int, int, int]:
    """The largest centred square, as (left, top, right, bottom)."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return (left, top, left + side, top + side)


def center_square(image: Image.Image, box: tuple[int, int, int, int] | None = None) -> Image.Image:
    """Crop to a square: `box` (left, top, right, bottom) if given, else the centre square."""
    return image.crop(box if box is not None else center_box(image))


def load_image(source: str | Path | Image.Image | np.ndarray, size: int) -> Tensor:
    """Open, centre-crop to a square and resize (LANCZOS) -> [1, 3, size, size] in [-1, 1]."""
    image = center_square(open_image(source))
    if image.size != (size, size):
        image = image.resize((size, size), Image.LANCZOS)
    return pil_to_tensor(image)


def pil_to_tensor(image: Image.Image) -> Tensor:
    """RGB PIL -> [1, 3, H, W] in [-1, 1]."""
    a = torch.from_numpy(np.array(image.convert("RGB"), dtype=np.float32))
    return (a.permute(2, 0, 1)[None] / 127.5 - 1.0).contiguous()


def tensor_to_uint8(x: Tensor) -> np.ndarray:
    """[3, H, W] or [1, 3, H, W] in [-1, 1] -> H x W x 3 uint8."""
    if x.ndim == 4:
        x = x[0]
    a = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return a.permute(1, 2, 0).to(torch.uint8).numpy()


def tensor_to_pil(x: Tensor) -> Image.Image:
    return Image.fromarray(tensor_to_uint8(x))


def load_mask(source: str | Path | Image.Image | np.ndarray, size: int) -> Tensor:
    """A mask image (white = missing) -> [size, size] bool, True = missing.

    Resized with nearest neighbour so the edges stay sharp; a pixel counts as missing
    when its luminance is above one half.
    """
    image = center_square(open_image(source)).convert("L")
    if image.size != (size, size):
        image = image.resize((size, size), Image.NEAREST)
    return torch.from_numpy(np.array(image) > 127)


def save_image_atomic(x: Tensor | Image.Image, path: str | Path) -> None:
    """Write an image file whole or not at all."""
    path = Path(path)
    image = x if isinstance(x, Image.Image) else tensor_to_pil(x)
    with atomic_path(path) as tmp:
        image.save(tmp, format=(path.suffix.lstrip(".") or "png").upper().replace("JPG", "JPEG"))
