"""One photo intake for every front end: a photo (and what was painted on it) + the task's
settings -> the aligned inverse problem, and the answer back into the photo.

    taken = take_photo(photo, size, "landmarks", frame, layers=[...], mask_file=None)
    problem = taken.pose(PhotoTask("inpaint"), device)      # what the solver is given
    repaired = taken.paste(result_uint8, "inpaint")          # H x W x 3 uint8, the photo's size

The page (`ilo_core.frontends.page`), the CLI (`ilo_core.frontends.cli`) and a sequence of
frames call it alike. The photo is read as a person sees it (EXIF orientation, 16-bit, CMYK:
`open_image`); painted layers are checked by their headers before they are decoded
(`read_layer`); a painted hole never reaches the solve through the resampling at its edge
(`framed_inpainting`). Bad input is an `InputError` whose message is one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ilo_core.generators.base import FaceFrame
from ilo_core.photo.alignment import Alignment, align, aligned_crop, aligned_mask, paste_back
from ilo_core.photo.framing import frame_in_image, framed_inpainting
from ilo_core.photo.images import ImageError, image_size, open_image, open_upright, pil_to_tensor, read_mask
from ilo_core.physics.problems import Problem, from_observation, simulate

MIN_MISSING, MAX_MISSING = 0.001, 0.98  # a painted hole's share of the generator's square
MAX_LAYER_SCALE = 4  # a painted layer may have at most this many times the photo's pixels (plus 1 MP)


class InputError(ValueError):
    """Bad input from a person; the message is one sentence, shown as is."""


def sentence(text: str) -> str:
    """A message as a sentence: capital first letter, final full stop."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


@dataclass(frozen=True)
class PhotoTask:
    """What to solve on a taken photo: the task and its settings (fractions in (0, 1], sigma in
    0-255 units). `degraded`: the photo is the observation itself (else the observation is
    simulated from it, seeded by `seed`)."""

    task: str
    degraded: bool = False
    observed: float = 0.1
    factor: int = 4
    sigma: float = 25.0
    measurements: float = 0.1
    seed: int = 0

    def params(self) -> dict:
        return dict(observed=self.observed, factor=self.factor, sigma=self.sigma, measurements=self.measurements)


@dataclass
class TakenPhoto:
    """The photo's aligned square at the generator's size, the painted mask in it, and what is
    needed to paste the answer back into the whole photo."""

    photo: Image.Image          # size x size RGB: what the generator sees
    missing: np.ndarray | None  # [size, size] bool, True = painted (missing)
    how: str                    # how the square was found, in words
    original: np.ndarray        # the whole photo, H x W x 3 uint8
    painted: np.ndarray         # [H, W] bool: the painted pixels of the whole photo
    alignment: Alignment
    reframed: bool = False      # a cut face at the generator's size, its hole solved in the generator's frame

    @property
    def size(self) -> int:
        return self.photo.width

    def pose(self, task: PhotoTask, device: torch.device | str = "cpu") -> Problem:
        """The inverse problem on the aligned square ([1, 3, size, size] in [-1, 1] on `device`)."""
        size = self.size
        if task.task == "inpaint":
            frac = float(self.missing.mean()) if self.missing is not None else 0.0
            if frac < MIN_MISSING and self.painted.any():
                raise InputError("The painted region lies outside the face's square: paint over the face to repair "
                                 "(the generator repairs faces).")
            if frac < MIN_MISSING:
                raise InputError("The mask is empty: paint the region to reconstruct with the brush.")
            if frac > MAX_MISSING:
                raise InputError("The mask covers the whole photo: leave some pixels observed.")
            # the painted pixels never reach the solve, not even through the resampling at the hole's edge
            operator, observation = framed_inpainting(self.original, self.painted, self.alignment, size)
            clean = None if task.degraded else pil_to_tensor(self.photo).to(device)
            return Problem(task.task, operator.to(device), observation.to(device), clean)
        image = pil_to_tensor(self.photo).to(device)
        try:
            if task.degraded:
                if task.task == "super-resolution":
                    low = size // int(task.factor) if task.factor and size % int(task.factor) == 0 else 0
                    if low < 1:
                        raise ValueError(f"factor {task.factor} does not divide the generator size {size}")
                    image = pil_to_tensor(self.photo.resize((low, low), Image.BICUBIC)).to(device)
                return from_observation(task.task, image, size, **task.params())
            return simulate(task.task, image, seed=task.seed, **task.params())
        except ValueError as err:
            raise InputError(sentence(str(err))) from None

    def paste(self, result: np.ndarray, task: str) -> np.ndarray:
        """The whole photo with `result` (size x size x 3 uint8) pasted back: for inpainting only
        the painted region (grown by the feather) changes; otherwise the aligned square, with a
        feathered edge. H x W x 3 uint8."""
        return paste_answer(self.original, result, self.alignment, self.painted, task)


def paste_answer(original: np.ndarray, result: np.ndarray, alignment: Alignment, painted: np.ndarray | None,
                 task: str) -> np.ndarray:
    """`TakenPhoto.paste` without taking the photo in (a clip's frame, its square already found):
    original H x W x 3 uint8, result size x size x 3 uint8, painted [H, W] bool or None."""
    return paste_back(original, result, alignment, painted if task == "inpaint" else None)


def take_photo(photo: str | Path | bytes | Image.Image | np.ndarray, size: int, align_how: str = "box",
               frame: FaceFrame = FaceFrame(), *, layers: list | tuple = (), mask_file: str | Path | None = None,
               face: int = 0, reframe_cut: bool = False) -> TakenPhoto:
    """A photo -> its aligned square at `size` px with the painted mask in it.

    `layers`: painted layers (paths, bytes, arrays or PIL images; alpha > 0 = painted), joined
    by `mask_file` (white = missing; the photo's size or exactly its aspect ratio). The
    alignment (`align_how`: landmarks, box or center, each falling back to the next; landmarks
    in the generator's face `frame`) applies to photo and mask alike; in a photo of several
    faces it takes the one under the paint, else the `face`-th largest. `reframe_cut`: a photo
    already `size` px square with paint on it is a cut face; its hole is solved in the
    generator's frame where its landmarks find one (`frame_in_image`).
    """
    try:
        image = open_image(photo, "the photo")
        painted = np.zeros((image.height, image.width), dtype=bool)
        for layer in layers or ():
            if layer is not None:
                painted |= read_layer(layer, image.size)
    except ImageError as err:
        raise InputError(sentence(str(err))) from None
    if mask_file:
        try:
            painted |= read_mask(mask_file, image.size)  # its header is checked before it is decoded
        except ImageError as err:
            raise InputError(f"The mask file: {err}.") from None
    original = np.asarray(image)
    alignment = None
    if reframe_cut and image.size == (size, size) and painted.any():
        alignment = frame_in_image(original, frame)
    reframed = alignment is not None
    if alignment is None:
        try:
            alignment = align(original, align_how, frame, painted=painted, face=face)
        except ValueError as err:
            raise InputError(sentence(str(err))) from None
    return take_aligned(original, alignment, size, painted, reframed)


def take_aligned(original: np.ndarray, alignment: Alignment, size: int, painted: np.ndarray | None = None,
                 reframed: bool = False) -> TakenPhoto:
    """A photo (H x W x 3 uint8) whose square is already found (a clip's frame, its alignment
    smoothed over time) -> its `TakenPhoto`. painted: [H, W] bool (None: nothing painted)."""
    if painted is None:
        painted = np.zeros(original.shape[:2], dtype=bool)
    return TakenPhoto(aligned_crop(original, alignment, size), aligned_mask(painted, alignment, size),
                      alignment.describe(), original, painted, alignment, reframed)


def read_layer(layer: str | Path | bytes | np.ndarray | Image.Image, photo_size: tuple[int, int]) -> np.ndarray:
    """A painted layer -> [H, W] bool at the photo's (width, height): True where painted (alpha > 0).

    The layer must have the photo's aspect ratio (within 1 %) and at most MAX_LAYER_SCALE times
    its pixels, checked by the header before anything is decoded; ImageError otherwise."""
    if isinstance(layer, (str, Path, bytes, bytearray, memoryview)):
        width, height = image_size(layer, "the painted layer")
    else:
        layer = np.asarray(layer)
        height, width = layer.shape[:2]
    pw, ph = photo_size
    if abs(width * ph - height * pw) > 0.01 * max(width * ph, height * pw):
        raise ImageError(f"the painted layer is {width} × {height} px but the photo is {pw} × {ph} px: "
                         f"paint on the photo as shown")
    if width * height > MAX_LAYER_SCALE * pw * ph + 1_000_000:
        raise ImageError(f"the painted layer is {width} × {height} px, far larger than the {pw} × {ph} px photo")
    image = open_upright(layer, "the painted layer")
    alpha = np.asarray(image.getchannel("A") if "A" in image.getbands() else image.convert("RGBA").getchannel("A"))
    if alpha.shape != (ph, pw):
        alpha = np.asarray(Image.fromarray(alpha).resize(photo_size, Image.NEAREST))
    return alpha > 0
