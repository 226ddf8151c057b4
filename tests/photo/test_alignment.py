"""Your photo, repaired: FFHQ-style landmark alignment and the result pasted back at the
photo's own size."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import FACES
from ilo_core.generators.base import FaceFrame
from ilo_core.photo.alignment import (align, aligned_crop, aligned_mask, five_landmarks, framed_quad, measure_face_frame,
                                      paste_back, quad_from_landmarks)
from ilo_core.photo.images import tensor_to_uint8

FACE = np.asarray(Image.open(FACES / "astronaut_face.png").convert("RGB"))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = ((a.astype(float) - b.astype(float)) ** 2).mean()
    return 10 * np.log10(255**2 / mse)


def placed(angle: float, scale: float, offset: tuple[int, int], canvas: tuple[int, int] = (900, 700)) -> np.ndarray:
    """The face rotated, scaled and placed off-centre on a plain background (a bigger photo)."""
    matrix = cv2.getRotationMatrix2D((128, 128), angle, scale)
    matrix[:, 2] += offset
    return cv2.warpAffine(FACE, matrix, canvas, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(120, 110, 100))


@pytest.mark.parametrize("angle, scale, offset", [(20, 0.7, (150, 100)), (-20, 1.5, (200, 150)), (0, 0.5, (600, 450)),
                                                  (10, 2.0, (200, 150)), (-15, 1.0, (500, 60))])
def test_a_rotated_scaled_off_centre_face_gives_the_same_aligned_crop(angle, scale, offset):
    reference = np.asarray(aligned_crop(FACE, align(FACE), 256))
    photo = placed(angle, scale, offset)
    alignment = align(photo)
    crop = np.asarray(aligned_crop(photo, alignment, 256))
    centre = slice(26, 230)  # the central 80 %
    value = psnr(crop[centre, centre], reference[centre, centre])
    print(f"angle {angle:+d}, scale {scale}: {alignment.describe()}, PSNR {value:.1f} dB")
    assert alignment.method == "landmarks" and value >= 25


def test_the_landmark_square_follows_the_ffhq_framing():
    alignment = align(FACE)
    side = alignment.side
    assert 250 < side < 350  # about twice the eye distance of this 256 px crop
    assert abs(alignment.quad.mean(0)[0] - 128) < 15  # the face is centred horizontally


def test_a_photo_without_a_face_falls_back_to_the_centre():
    sky = np.full((200, 300, 3), (90, 140, 200), np.uint8)
    alignment = align(sky)
    assert alignment.method == "center" and alignment.side == 200


def test_outside_the_grown_painted_region_the_repaired_photo_is_the_photo_bit_for_bit():
    photo = placed(12, 1.3, (200, 120))
    alignment = align(photo)
    painted = np.zeros(photo.shape[:2], bool)
    painted[330:380, 260:420] = True
    result = np.asarray(aligned_crop(photo, alignment, 64))[::-1].copy()  # anything different
    repaired = paste_back(photo, result, alignment, painted, feather=6)
    assert repaired.shape == photo.shape and repaired.dtype == np.uint8
    grown = cv2.dilate(painted.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13))) > 0
    assert np.array_equal(repaired[~grown], photo[~grown])
    assert (repaired[painted] != photo[painted]).any(axis=1).mean() > 0.9  # the painted region did change


def test_without_a_region_the_aligned_square_is_replaced_and_the_rest_kept():
    photo = placed(-8, 1.0, (300, 200))
    alignment = align(photo)
    result = np.zeros((64, 64, 3), np.uint8)
    repaired = paste_back(photo, result, alignment)
    centre = alignment.quad.mean(0).astype(int)
    assert (repaired[centre[1], centre[0]] == 0).all()
    assert np.array_equal(repaired[:20, :20], photo[:20, :20])  # far from the square


def test_the_mask_follows_the_photo_into_the_aligned_square():
    photo = placed(15, 1.2, (250, 150))
    alignment = align(photo)
    painted = np.zeros(photo.shape[:2], bool)
    centre = alignment.quad.mean(0).astype(int)
    painted[centre[1] - 40:centre[1] + 40, centre[0] - 40:centre[0] + 40] = True
    small = aligned_mask(painted, alignment, 64)
    assert small[28:36, 28:36].all() and not small[:5].any()
    assert abs(small.mean() - (80 * 80) / alignment.side**2) < 0.02


def test_ffhqs_own_frame_leaves_ffhqs_square_as_it_is():
    points = five_landmarks(FACE)
    assert np.allclose(framed_quad(quad_from_landmarks(points), FaceFrame()), quad_from_landmarks(points))
    assert np.allclose(align(FACE).quad, quad_from_landmarks(points))


def test_a_frame_shrinks_moves_and_keeps_the_rotation_of_the_square():
    photo = placed(20, 1.0, (300, 200))
    ffhq, framed = align(photo).quad, align(photo, frame=FaceFrame(1.25, 0.5, 0.6)).quad
    side = lambda q: np.linalg.norm(q[3] - q[0])  # noqa: E731
    assert side(framed) == pytest.approx(side(ffhq) / 1.25)
    assert np.allclose(framed[3] - framed[0], (ffhq[3] - ffhq[0]) / 1.25)  # same direction
    # FFHQ's centre sits 0.1 of the new side below the new centre, along the square's "down"
    down = (ffhq[1] - ffhq[0]) / side(ffhq)
    assert np.allclose(ffhq.mean(0) - framed.mean(0), 0.1 * side(framed) * down)


def test_the_dcgans_stored_frame_is_where_its_samples_faces_sit(dcgan):
    with torch.no_grad():
        samples = dcgan.render(dcgan.sample_variables(48, torch.Generator().manual_seed(7)))
    frame, found = measure_face_frame([tensor_to_uint8(s) for s in samples])
    print(f"48 samples (seed 7): dlib found {found}; {frame}; stored {dcgan.face_frame}")
    assert found >= 24
    assert abs(frame.side - dcgan.face_frame.side) < 0.07 and frame.side > 1.2  # tighter than FFHQ's
    assert abs(frame.x - dcgan.face_frame.x) < 0.03 and abs(frame.y - dcgan.face_frame.y) < 0.03


def test_a_photos_face_is_cut_where_the_generators_faces_sit(dcgan):
    photo = placed(-15, 1.3, (250, 120))
    crop = np.asarray(aligned_crop(photo, align(photo, "landmarks", dcgan.face_frame), 256))
    again = quad_from_landmarks(five_landmarks(crop)) / 256  # FFHQ's square found in the crop
    print(f"FFHQ's square in the crop: side {np.linalg.norm(again[3] - again[0]):.3f}, centre {again.mean(0)}")
    assert np.linalg.norm(again[3] - again[0]) == pytest.approx(dcgan.face_frame.side, abs=0.06)
    assert np.allclose(again.mean(0), (dcgan.face_frame.x, dcgan.face_frame.y), atol=0.03)
