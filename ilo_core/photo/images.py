"""Image I/O: files and PIL images <-> tensors [B, 3, H, W] in [-1, 1]."""

from __future__ import annotations

import io
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from ilo_core.atomic import atomic_write, regular_file

MAX_PIXELS = 40_000_000  # decoded pixel limit: larger uploads are refused, not decoded


class ImageError(ValueError):
    """An image could not be used; the message says why in one line."""


def _too_large(name: str, width: int, height: int) -> ImageError:
    return ImageError(f"{name} is too large ({width} × {height} px; the limit is "
                      f"{MAX_PIXELS // 1_000_000} megapixels)")


EXIF_ORIENTATION = 0x0112
SWAPPING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that turn the stored image by 90 degrees


def image_size(source: str | Path | bytes, name: str | None = None) -> tuple[int, int]:
    """(width, height) of an image file (or its bytes) as a person sees it (after its EXIF
    orientation: a phone photo stored sideways gives its upright size), from its header alone:
    nothing is decoded.

    Raises ImageError when the file is missing, empty, not an image, not a regular file, or
    over MAX_PIXELS.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        name, data, fp = name or "the image", bytes(source), io.BytesIO(bytes(source))
        empty = len(data) == 0
    else:
        path = Path(source)
        name = name or path.name
        regular_file(path, "image file", ImageError)
        fp, empty = path, path.stat().st_size == 0
    if empty:
        raise ImageError(f"{name} is empty (0 bytes): upload the photo again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below
            with Image.open(fp) as image:
                size = image.size
                if header_orientation(image) in SWAPPING_ORIENTATIONS:
                    size = (size[1], size[0])
    except Image.DecompressionBombError as err:  # PIL refuses to even open it
        pixels = re.search(r"\((\d+) pixels\)", str(err))
        count = f"{int(pixels.group(1)):,} px" if pixels else "over 178 megapixels"
        raise ImageError(f"{name} is too large ({count}; the limit is "
                         f"{MAX_PIXELS // 1_000_000} megapixels)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{name} is not a readable image ({type(err).__name__}): "
                         f"use a PNG, JPEG or WebP file") from None
    if size[0] * size[1] > MAX_PIXELS:
        raise _too_large(name, *size)
    return size


def header_orientation(image: Image.Image) -> int | None:
    """The EXIF orientation an opened image's header gives (None if none), read without
    decoding pixels (`Image.getexif` decodes a whole PNG to look for EXIF after its pixels)."""
    raw = image.info.get("exif")
    if not raw:
        return None
    try:
        exif = Image.Exif()
        exif.load(raw)
        return exif.get(EXIF_ORIENTATION)
    except (OSError, ValueError, SyntaxError, struct.error, TypeError):
        return None  # an unreadable EXIF block: the image is used as stored


def open_image(source: str | Path | bytes | Image.Image | np.ndarray, name: str | None = None) -> Image.Image:
    """Open a file or its bytes (or accept an array / PIL image) as an 8-bit RGB PIL image,
    upright as a person sees it.

    Handles grayscale, palette, RGBA (composited on white), 16-bit and CMYK inputs and
    EXIF orientation. The size is checked from the header before anything is decoded.
    Raises ImageError for missing, unreadable, corrupt, truncated or too-large images.
    """
    return to_rgb(open_upright(source, name))


def open_upright(source: str | Path | bytes | Image.Image | np.ndarray, name: str | None = None) -> Image.Image:
    """`open_image` without the conversion to RGB: the decoded image in its own mode (an RGBA
    painted layer keeps its alpha), EXIF orientation applied."""
    if isinstance(source, np.ndarray):
        source = array_to_pil(source)
    if isinstance(source, Image.Image):
        image = source
        if image.width * image.height > MAX_PIXELS:
            raise _too_large(name or "the image", image.width, image.height)
    else:
        if isinstance(source, (bytes, bytearray, memoryview)):
            name, fp = name or "the image", io.BytesIO(bytes(source))
        else:
            name, fp = name or Path(source).name, Path(source)
        image_size(source, name)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(fp)
                image.load()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise ImageError(f"{name} is truncated or corrupt ({type(err).__name__}): "
                             f"save it again and upload the new file") from None
    if image.width < 8 or image.height < 8:
        raise ImageError(f"image is {image.width} × {image.height} px: too small (at least 8 × 8)")
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, struct.error):
        return image  # an unreadable EXIF block: the image as stored


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


def read_mask(source: str | Path | Image.Image | np.ndarray, photo_size: tuple[int, int] | None = None) -> np.ndarray:
    """A mask image (white = missing) -> [H, W] bool, True = missing, at the photo's size.

    `photo_size` (width, height) is the size of the photo the mask belongs to: the mask
    must have that size, or exactly its aspect ratio (it is then resized, nearest
    neighbour); anything else is an ImageError. A pixel is missing when its luminance is
    above one half.
    """
    image = open_image(source).convert("L")
    if photo_size is not None and image.size != tuple(photo_size):
        (w, h), (pw, ph) = image.size, photo_size
        if w * ph != h * pw:
            raise ImageError(f"the mask is {w} × {h} px but the photo is {pw} × {ph} px: "
                             f"give a mask of the photo's size (or exactly its aspect ratio)")
        image = image.resize((pw, ph), Image.NEAREST)
    return np.array(image) > 127


def load_mask(source: str | Path | Image.Image | np.ndarray, size: int,
              photo_size: tuple[int, int] | None = None) -> Tensor:
    """`read_mask`, then the photo's centre square resized (nearest) to `size` -> [size, size] bool."""
    image = center_square(Image.fromarray(read_mask(source, photo_size)))
    if image.size != (size, size):
        image = image.resize((size, size), Image.NEAREST)
    return torch.from_numpy(np.array(image))


def image_format(path: str | Path) -> str:
    """The PIL format name for a file name's extension (PNG, JPEG, WEBP, ...); ImageError if none."""
    suffix = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None or fmt not in Image.SAVE:
        raise ImageError(f"cannot write {Path(path).name}: unknown image format {suffix or '(no extension)'}; "
                         f"use .png, .jpg or .webp")
    return fmt


def save_image_atomic(x: Tensor | Image.Image, path: str | Path) -> None:
    """Write an image file whole or not at all, in the format its extension names."""
    image = x if isinstance(x, Image.Image) else tensor_to_pil(x)
    fmt = image_format(path)
    with atomic_write(path) as f:
        image.save(f, format=fmt)
