"""Face alignment the FFHQ way, and pasting a reconstruction back into the photo.

An `Alignment` is the square `quad` in the photo (corners top-left, bottom-left,
bottom-right, top-right, in photo pixels, float) that becomes the generator's image; it
may be rotated and may reach past the photo's borders, which are then filled by
reflection, as the FFHQ procedure pads them. Three ways to find it, each the fallback of
the one before:

- "landmarks": dlib's HOG face detector and its 5-point landmark model (CC0, shipped in
  `face-recognition-models`). FFHQ's similarity transform uses the eye centres and the
  mouth corners; the 5-point model has eye corners and the base of the nose, so the mouth
  centre is estimated as eye_avg + 1.45 (nose - eye_avg) (the mouth line sits about 1.45
  times as far below the eye line as the base of the nose, on average faces). Then, as
  in FFHQ: x = eye_to_eye - rot90(eye_to_mouth), normalised, times
  max(2 |eye_to_eye|, 1.8 |eye_to_mouth|); centre eye_avg + 0.1 eye_to_mouth. That is
  FFHQ's square; the generator's own `FaceFrame` (where that square sits in its samples)
  then gives the square it sees, so a photo's face is framed as the generator's faces are.
- "box": OpenCV's Haar cascade box, enlarged 1.5x and squared (no rotation).
- "center": the largest centred square.

Images here are H x W x 3 uint8 arrays or PIL images; masks are H x W bool.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image

from ilo_core.generators.base import FaceFrame
from ilo_core.photo.facecrop import face_box
from ilo_core.photo.images import center_box

ALIGNMENTS = ("landmarks", "box", "center")
MOUTH_FROM_NOSE = 1.45


@dataclass(frozen=True)
class Alignment:
    """The photo square that the generator sees: quad [4, 2] (TL, BL, BR, TR) in photo pixels."""

    quad: np.ndarray
    method: str          # what found it: "landmarks", "box" or "center"
    photo_size: tuple[int, int]   # (width, height)

    @property
    def side(self) -> float:
        return float(np.linalg.norm(self.quad[3] - self.quad[0]))

    def to_photo(self, size: int) -> np.ndarray:
        """2 x 3 affine map from generator pixel (u, v) of a size x size image to photo pixel (x, y)."""
        tl, bl, tr = self.quad[0], self.quad[1], self.quad[3]
        du, dv = (tr - tl) / size, (bl - tl) / size
        # pixel centres: generator pixel u spans [u, u + 1) of the square, photo pixel x is centred at x
        return np.column_stack([du, dv, tl + (du + dv) / 2 - 0.5]).astype(np.float64)

    def describe(self) -> str:
        angle = float(np.degrees(np.arctan2(*(self.quad[3] - self.quad[0])[::-1])))
        return (f"{self.method}: a {self.side:.0f} px square centred at ({self.quad.mean(0)[0]:.0f}, "
                f"{self.quad.mean(0)[1]:.0f}), rotated {angle:+.1f}°")


@lru_cache(maxsize=1)
def _dlib_models():
    """dlib's face detector and 5-point landmark model (read-only; about 0.6 s to load), or None."""
    try:
        import dlib
    except ImportError:
        return None
    spec = importlib.util.find_spec("face_recognition_models")  # not imported: it needs pkg_resources
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(spec.submodule_search_locations[0], "models", "shape_predictor_5_face_landmarks.dat")
    if not os.path.isfile(path):
        return None
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(path)


MIN_FACE_PX = 16  # the smallest side, after the detector's downscale, that can hold a face
DETECT_SIDE = 1024       # faces are looked for on the photo downscaled to this side first,
FULL_DETECT_SIDE = 4096  # then, where none was found, at up to this side (a small face in a big photo)


class NoFaceUnderPaint(ValueError):
    """The photo has faces, but the painted region is on none of them."""


def five_landmarks(photo: np.ndarray) -> np.ndarray | None:
    """[5, 2] dlib 5-point landmarks of the largest face (eye corners x4, nose base), or None."""
    faces = all_landmarks(photo)
    return faces[0] if faces else None


def all_landmarks(photo: np.ndarray) -> list[np.ndarray]:
    """[5, 2] landmarks of every face dlib finds, the largest first; [] if none (or no dlib).

    Faces are looked for on the photo downscaled to DETECT_SIDE (upsampled once by the
    detector); where none is found in a larger photo, once more at up to FULL_DETECT_SIDE
    without the upsampling, so that a 100 px face in a 4000 x 3000 photo is found."""
    for side, upsample in ((DETECT_SIDE, 1), (FULL_DETECT_SIDE, 0)):
        scale = min(1.0, side / max(photo.shape[:2]))
        if min(photo.shape[:2]) * scale < MIN_FACE_PX:  # a sliver (20000 x 8 px) holds no face to find
            return []
        faces = landmarks_at_scale(photo, scale, upsample)
        if faces:
            return faces
        if scale == 1.0 or max(photo.shape[:2]) <= DETECT_SIDE:
            return []
    return []


def landmarks_at_scale(photo: np.ndarray, scale: float, upsample: int = 0) -> list[np.ndarray]:
    """[5, 2] landmarks (in the photo's pixels) of every face dlib finds in the photo resized by
    `scale` (<= 1) and upsampled `upsample` times by the detector, the largest first; [] if none
    (or no dlib). A clip's frames are searched this way at the scale their face needs."""
    models = _dlib_models()
    if models is None:
        return []
    detector, predictor = models
    small = photo if scale >= 1.0 else cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    scale = 1.0 if scale >= 1.0 else scale
    small = np.ascontiguousarray(small)
    faces = sorted(detector(small, upsample), key=lambda r: -r.width() * r.height())
    return [np.array([(p.x, p.y) for p in predictor(small, face).parts()], dtype=np.float64) / scale
            for face in faces]


def choose_face(faces: list[np.ndarray], frame: FaceFrame, painted: np.ndarray | None = None,
                index: int = 0) -> np.ndarray:
    """The landmarks of the face to repair: with a painted region ([H, W] bool, True = painted),
    the face whose square (in the generator's `frame`) holds most of the paint (NoFaceUnderPaint
    when it is on none); else the `index`-th largest (ValueError naming how many there are)."""
    if painted is not None and painted.any() and len(faces) > 1:
        counts = [int(_inside(framed_quad(quad_from_landmarks(f), frame), painted)) for f in faces]
        if max(counts) == 0:
            raise NoFaceUnderPaint(f"the painted region is on none of the {len(faces)} faces found: paint over "
                                   f"the face to repair (the generator repairs faces)")
        return faces[int(np.argmax(counts))]
    if not 0 <= index < len(faces):
        raise ValueError(f"face {index} was asked for, but {len(faces)} face{'s' if len(faces) != 1 else ''} "
                         f"{'were' if len(faces) != 1 else 'was'} found (0 is the largest)")
    return faces[index]


def _inside(quad: np.ndarray, painted: np.ndarray) -> int:
    """How many painted pixels lie inside `quad` ([4, 2] corners, x y)."""
    mask = np.zeros(painted.shape, dtype=np.uint8)
    cv2.fillConvexPoly(mask, np.round(quad).astype(np.int32), 1)
    return int((mask.astype(bool) & painted).sum())


def quad_from_landmarks(points: np.ndarray) -> np.ndarray:
    """FFHQ's square (TL, BL, BR, TR) from 5-point landmarks."""
    eye_a, eye_b, nose = points[0:2].mean(0), points[2:4].mean(0), points[4]
    eye_left, eye_right = (eye_a, eye_b) if eye_a[0] < eye_b[0] else (eye_b, eye_a)
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    mouth = eye_avg + MOUTH_FROM_NOSE * (nose - eye_avg)
    eye_to_mouth = mouth - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def framed_quad(ffhq: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """The square (TL, BL, BR, TR) in which FFHQ's square `ffhq` sits as `frame` says: side
    |ffhq| / frame.side, FFHQ's centre at (frame.x, frame.y) of it, the same rotation."""
    side = float(np.linalg.norm(ffhq[3] - ffhq[0]))
    across, down = (ffhq[3] - ffhq[0]) / side, (ffhq[1] - ffhq[0]) / side
    new_side = side / frame.side
    centre = ffhq.mean(0) - ((frame.x - 0.5) * across + (frame.y - 0.5) * down) * new_side
    half_across, half_down = across * new_side / 2, down * new_side / 2
    return np.stack([centre - half_across - half_down, centre - half_across + half_down,
                     centre + half_across + half_down, centre + half_across - half_down])


def small_image_landmarks(image: np.ndarray, upscale: int = 4) -> np.ndarray | None:
    """`five_landmarks` [5, 2] of a small square image (a generator-size crop, H x H x 3 uint8),
    in its own pixels, or None. The image is enlarged `upscale` times (bicubic) and given a
    replicated border of a quarter of its side, so that the detector sees a face of its working
    size with some context around it."""
    big = cv2.resize(image, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
    pad = big.shape[0] // 4
    big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    points = five_landmarks(big)
    return None if points is None else (points - pad) / upscale


def measure_face_frame(images: Sequence[np.ndarray], upscale: int = 4) -> tuple[FaceFrame, int]:
    """Where FFHQ's landmark square sits in generated faces: the median over the faces dlib
    finds (`small_image_landmarks`), and how many it found. images: square H x H x 3 uint8 (a
    generator's samples)."""
    if _dlib_models() is None:
        raise RuntimeError("measuring a face frame needs dlib and face-recognition-models")
    found = []
    for image in images:
        points = small_image_landmarks(image, upscale)
        if points is None:
            continue
        quad = quad_from_landmarks(points) / image.shape[0]
        found.append((np.linalg.norm(quad[3] - quad[0]), *quad.mean(0)))
    if not found:
        raise RuntimeError(f"dlib found no face in {len(images)} images")
    side, x, y = np.median(np.array(found), axis=0)
    return FaceFrame(round(float(side), 3), round(float(x), 3), round(float(y), 3)), len(found)


def box_quad(box: tuple[int, int, int, int]) -> np.ndarray:
    """The quad [4, 2] (TL, BL, BR, TR) of an upright box (left, top, right, bottom)."""
    left, top, right, bottom = box
    return np.array([[left, top], [left, bottom], [right, bottom], [right, top]], dtype=np.float64)


def align(photo: Image.Image | np.ndarray, how: str = "landmarks", frame: FaceFrame = FaceFrame(),
          painted: np.ndarray | None = None, face: int = 0) -> Alignment:
    """The generator's square in `photo` by `how`, falling back landmarks -> box -> center;
    `Alignment.method` says which one was used. `frame`: the generator's `face_frame`, which
    "landmarks" follows (FFHQ's own framing by default). In a photo of several faces,
    "landmarks" takes the one under the `painted` region ([H, W] bool), else the `face`-th
    largest (`choose_face`: NoFaceUnderPaint / ValueError in one sentence)."""
    if how not in ALIGNMENTS:
        raise ValueError(f"unknown alignment {how!r}; choose one of {', '.join(ALIGNMENTS)}")
    array = np.asarray(photo.convert("RGB") if isinstance(photo, Image.Image) else photo)
    pil = Image.fromarray(array)
    size = (array.shape[1], array.shape[0])
    if how == "landmarks":
        faces = all_landmarks(array)
        if faces:
            points = choose_face(faces, frame, painted, face)
            return Alignment(framed_quad(quad_from_landmarks(points), frame), "landmarks", size)
    if face:
        raise ValueError(f"face {face} was asked for, but no face was found by its landmarks (0 is the largest)")
    if how in ("landmarks", "box"):
        box, found = face_box(pil)
        if found == "face detector":
            return Alignment(box_quad(box), "box", size)
    return Alignment(box_quad(center_box(pil)), "center", size)


def aligned_crop(photo: Image.Image | np.ndarray, alignment: Alignment, size: int,
                 fill: np.ndarray | None = None) -> Image.Image:
    """The aligned square resampled to size x size (borders reflected, like FFHQ's padding).

    fill: [H, W] bool, photo pixels (a painted region) filled by OpenCV's Telea from the rest
    before the resampling, so that none of them reaches the crop through the pixels at its
    edge (filled at the resolution the square is resampled from)."""
    array = np.asarray(photo.convert("RGB") if isinstance(photo, Image.Image) else photo)
    q = alignment.quad
    inside = q.min() >= 0 and q[:, 0].max() <= array.shape[1] and q[:, 1].max() <= array.shape[0]
    if inside and np.array_equal(q, q.round()) and q[0, 0] == q[1, 0] and q[0, 1] == q[3, 1]:
        left, top, right, bottom = (int(v) for v in (q[0, 0], q[0, 1], q[2, 0], q[2, 1]))  # upright: crop + LANCZOS
        box = array[top:bottom, left:right]
        if fill is not None:
            box = _telea(box, fill[top:bottom, left:right])
        return Image.fromarray(box).resize((size, size), Image.LANCZOS)
    matrix = alignment.to_photo(size)
    shrink = alignment.side / size / 2  # pre-shrink so that the warp never skips pixels
    if shrink > 1:
        array = cv2.resize(array, None, fx=1 / shrink, fy=1 / shrink, interpolation=cv2.INTER_AREA)
        matrix = matrix / shrink
    if fill is not None:
        if fill.shape != array.shape[:2]:  # a shrunk pixel with any painted share is painted
            fill = cv2.resize(fill.astype(np.float32), (array.shape[1], array.shape[0]), interpolation=cv2.INTER_AREA) > 0
        array = _telea(array, fill)
    out = cv2.warpAffine(array, matrix, (size, size), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REFLECT)
    return Image.fromarray(out)


def _telea(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """`image` (H x W x 3 uint8) with its `hole` pixels ([H, W] bool) filled by OpenCV's Telea."""
    if not hole.any():
        return image
    return cv2.inpaint(np.ascontiguousarray(image), hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)


def aligned_mask(mask: np.ndarray, alignment: Alignment, size: int) -> np.ndarray:
    """A photo mask [H, W] bool -> the generator's [size, size] bool (area-averaged, > 1/2).
    Where the square reaches past the photo the mask is reflected as `aligned_crop` reflects
    the photo, so a painted region's mirror image is painted too (not taken as observed)."""
    up = 4  # supersample, then average: a fair share of each generator pixel
    matrix = alignment.to_photo(size * up)
    warped = cv2.warpAffine(mask.astype(np.float32), matrix, (size * up, size * up),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
    return cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA) > 0.5


def from_aligned(result: np.ndarray, alignment: Alignment) -> np.ndarray:
    """A reconstruction [R, R, C] float (any range) warped back onto the photo's pixels
    [H, W, C] (bicubic); photo pixels past the square take the square's nearest edge."""
    width, height = alignment.photo_size
    warped = cv2.warpAffine(np.ascontiguousarray(result, dtype=np.float32), alignment.to_photo(result.shape[0]),
                            (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return warped.reshape(height, width, *result.shape[2:])


def outline(photo: np.ndarray, alignment: Alignment, max_side: int = 320) -> np.ndarray:
    """A thumbnail (at most `max_side` px) of the photo with the aligned square drawn on it;
    where the square reaches past the photo, the canvas grows (grey) to show it whole."""
    height, width = photo.shape[:2]
    low = np.minimum(alignment.quad.min(0), 0).astype(int)
    high = np.maximum(alignment.quad.max(0), (width, height)).astype(int) + 1
    scale = min(1.0, max_side / max(high - low))
    canvas = np.full((int((high - low)[1] * scale) + 1, int((high - low)[0] * scale) + 1, 3), 128, np.uint8)
    thumb = cv2.resize(photo, (max(1, int(width * scale)), max(1, int(height * scale))), interpolation=cv2.INTER_AREA)
    top, left = int(-low[1] * scale), int(-low[0] * scale)
    canvas[top:top + thumb.shape[0], left:left + thumb.shape[1]] = thumb[:canvas.shape[0] - top, :canvas.shape[1] - left]
    corners = np.round((alignment.quad - low) * scale).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [corners], isClosed=True, color=(255, 0, 255), thickness=2)
    return canvas


def paste_back(photo: np.ndarray, result: np.ndarray, alignment: Alignment, region: np.ndarray | None = None,
               feather: int | None = None) -> np.ndarray:
    """The reconstruction `result` [R, R, 3] warped back into `photo` [H, W, 3] and blended.

    With `region` (the painted pixels, [H, W] bool) only that region grown by `feather` px
    changes: every other pixel of the photo is returned bit-identical. Without it the
    aligned square is replaced, its edge feathered over `feather` px. Default feather:
    2 % of the square's side, at least 2 px.
    """
    height, width = photo.shape[:2]
    size = result.shape[0]
    feather = max(2, int(round(alignment.side * 0.02))) if feather is None else int(feather)
    to_photo = alignment.to_photo(size)  # warpAffine without WARP_INVERSE_MAP: result -> photo
    warped = from_aligned(result, alignment)
    if region is not None:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * feather + 1,) * 2)
        grown = cv2.dilate(region.astype(np.uint8), kernel) > 0
        alpha = cv2.GaussianBlur(region.astype(np.float32), (0, 0), sigmaX=max(feather / 2, 0.5))
        alpha = np.maximum(alpha, region.astype(np.float32)) * grown
    else:
        square = np.zeros((size, size), np.float32)
        edge = max(1, int(round(feather * size / alignment.side)))
        square[edge:-edge, edge:-edge] = 1
        square = cv2.GaussianBlur(square, (0, 0), sigmaX=max(edge / 2, 0.5))
        alpha = cv2.warpAffine(square, to_photo, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT)
    inside = cv2.warpAffine(np.ones((size, size), np.float32), to_photo, (width, height),
                            flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
    alpha = (alpha * inside)[..., None]
    blended = np.round(photo * (1 - alpha) + warped * alpha).clip(0, 255).astype(np.uint8)
    return np.where(alpha > 0, blended, photo)
