"""A painted hole as the generator sees it, and a hole in a face someone else cut solved in
the generator's own frame.

`framed_inpainting` poses any photo's painted hole in the generator's square (the page's and
the CLI's): the painted pixels are filled before the resampling, so none of them reaches the
solve through the pixels at the hole's edge.

A generator draws its faces at one size and place (`SplitGenerator.face_frame`: the DigiFace
DCGAN's fill a quarter more of the picture than FFHQ's). A crop already at the generator's
size but framed otherwise (a benchmark's 64 px face, a face detector's box) asks it for a face
it never drew, and ILO fills the hole worse (docs/evaluation/findings.md, "A cut face's hole
solved in the generator's frame"; `python -m ilo_core.evaluation.studies frame_match`). So the
CLI solves such a hole as the page solves a photo's: it
finds the generator's square in the image (`frame_in_image`), solves the hole there, and
answers in the image's own pixels (`answer_in_image`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ilo_core.generators.base import FaceFrame
from ilo_core.photo.alignment import (Alignment, aligned_crop, aligned_mask, box_quad, framed_quad, from_aligned,
                                      quad_from_landmarks, small_image_landmarks)
from ilo_core.photo.images import pil_to_tensor
from ilo_core.physics.operators import Inpainting

FRAME_TOLERANCE = 0.05  # a square whose corners are within this share of the side of the image's is the image
PLAUSIBLE_SIDES = (0.5, 2.0)  # a square outside these shares of the image's side is a misdetection
DETECT_SIDE = 256  # px: a smaller image is enlarged about to this side to find its landmarks (the DCGAN's 64 px: 4x)


def frame_in_image(image: np.ndarray, frame: FaceFrame, tolerance: float = FRAME_TOLERANCE) -> Alignment | None:
    """The generator's square in an image already at its size (H x H x 3 uint8), found by its
    landmarks as `measure_face_frame` measured `frame` (`small_image_landmarks`: on the image
    enlarged to about `DETECT_SIDE`, a 64 px one 4x): None where dlib finds no face, where the
    square's side is not within `PLAUSIBLE_SIDES` of the image's (a misdetection in a cut face),
    or where every corner of the square lies within `tolerance` of the side of the image's own
    corner."""
    points = small_image_landmarks(image, upscale=max(1, round(DETECT_SIDE / image.shape[0])))
    if points is None:
        return None
    quad = framed_quad(quad_from_landmarks(points), frame)
    side = image.shape[0]
    alignment = Alignment(quad, "landmarks", (image.shape[1], image.shape[0]))
    low, high = PLAUSIBLE_SIDES
    as_cut = np.abs(quad - box_quad((0, 0, side, side))).max() <= tolerance * side  # each corner near the image's
    if as_cut or not low <= alignment.side / side <= high:
        return None
    return alignment


def framed_inpainting(image: np.ndarray, missing: np.ndarray, alignment: Alignment, size: int) -> tuple[Inpainting, Tensor]:
    """The hole of `image` (H x W x 3 uint8; `missing` [H, W] bool, True = painted) as the
    generator sees it in `alignment`'s square: (operator, observation [1, 3, size, size] in
    [-1, 1]). None of the hole's pixels reaches the observation: they are filled (Telea) before
    the resampling (`aligned_crop`'s `fill`); a generator pixel is missing where more than half
    of it is (`aligned_mask`)."""
    operator = Inpainting.from_missing(torch.from_numpy(aligned_mask(missing, alignment, size)))
    return operator, operator.A(pil_to_tensor(aligned_crop(image, alignment, size, fill=missing)))


def answer_in_image(answer: Tensor, alignment: Alignment, observation: Tensor, keep: Tensor) -> Tensor:
    """Answers [B, 3, R, R] in [-1, 1] of the generator's square, back in the image's pixels:
    the observed pixels (`keep` [1, 1, H, W] bool) from `observation` [B, 3, H, W], the hole from
    the answer warped back (a hole pixel past the square takes the square's nearest edge)."""
    back = [torch.from_numpy(from_aligned(a.permute(1, 2, 0).float().cpu().numpy(), alignment)).permute(2, 0, 1)
            for a in answer]
    back = torch.stack(back).to(observation.device).clamp(-1, 1)
    return torch.where(keep, observation, back)
