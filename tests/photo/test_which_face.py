"""In a photo of several faces, the face under the painted region is the one repaired (else
the largest, or the one asked for); paint on no face is said in a sentence; a small face in a
large photo is found at the photo's resolution."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from conftest import FACES
from ilo_core.frontends.page import InputError, read_editor
from ilo_core.generators.dcgan import DCGANGenerator
from ilo_core.photo.alignment import NoFaceUnderPaint, align, all_landmarks

pytestmark = pytest.mark.skipif(not all_landmarks(np.asarray(Image.open(FACES / "astronaut_face.png").convert("RGB"))),
                                reason="dlib's landmark model is not installed")

FRAME = DCGANGenerator.face_frame
BIG, SMALL = (40, 60, 320, 340), (420, 120, 620, 320)  # the two faces' boxes (left, top, right, bottom)


def two_faces() -> np.ndarray:
    """A 700 x 420 photo: the astronaut (280 px) on the left, Grace Hopper (200 px) on the right."""
    canvas = Image.new("RGB", (700, 420), (128, 128, 128))
    canvas.paste(Image.open(FACES / "astronaut_face.png").convert("RGB").resize((280, 280)), BIG[:2])
    canvas.paste(Image.open(FACES / "grace_hopper_face.png").convert("RGB").resize((200, 200)), SMALL[:2])
    return np.asarray(canvas)


def centre_x(alignment) -> float:
    return float(alignment.quad.mean(0)[0])


def painted_over(box, shape) -> np.ndarray:
    left, top, right, bottom = box
    painted = np.zeros(shape[:2], dtype=bool)
    painted[(top + bottom) // 2:(top + bottom) // 2 + 30, left + 50:right - 50] = True
    return painted


def test_the_face_under_the_paint_is_the_one_repaired_and_else_the_largest_or_the_one_asked_for():
    photo = two_faces()
    assert len(all_landmarks(photo)) == 2
    assert centre_x(align(photo, "landmarks", FRAME)) < 350  # the largest
    assert centre_x(align(photo, "landmarks", FRAME, painted=painted_over(SMALL, photo.shape))) > 350
    assert centre_x(align(photo, "landmarks", FRAME, painted=painted_over(BIG, photo.shape))) < 350
    assert centre_x(align(photo, "landmarks", FRAME, face=1)) > 350
    with pytest.raises(ValueError, match="face 2 was asked for, but 2 faces were found"):
        align(photo, "landmarks", FRAME, face=2)


def test_paint_on_no_face_is_a_sentence_that_says_so(tmp_path):
    photo = two_faces()
    painted = np.zeros(photo.shape[:2], dtype=bool)
    painted[380:410, 300:400] = True  # the grey below the faces
    with pytest.raises(NoFaceUnderPaint):
        align(photo, "landmarks", FRAME, painted=painted)
    Image.fromarray(photo).save(tmp_path / "two.png")
    layer = np.zeros((*photo.shape[:2], 4), dtype=np.uint8)
    layer[painted] = (255, 0, 255, 255)
    Image.fromarray(layer, "RGBA").save(tmp_path / "layer.png")
    with pytest.raises(InputError, match="The painted region is on none of the 2 faces found"):
        read_editor({"background": str(tmp_path / "two.png"), "layers": [str(tmp_path / "layer.png")]}, 64,
                    "landmarks", frame=FRAME)


def test_a_100_px_face_in_a_4000_x_3000_photo_is_found():
    canvas = Image.new("RGB", (4000, 3000), (128, 128, 128))
    canvas.paste(Image.open(FACES / "astronaut_face.png").convert("RGB").resize((110, 110)), (2500, 900))
    photo = np.asarray(canvas)
    started = time.perf_counter()
    faces = all_landmarks(photo)
    print(f"4000 x 3000 photo, 110 px face: {len(faces)} found in {time.perf_counter() - started:.1f} s")
    assert len(faces) == 1
    x, y = faces[0].mean(0)
    assert 2500 < x < 2610 and 900 < y < 1010
