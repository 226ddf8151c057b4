"""A face followed through a clip (`ilo_core.sequences.tracking`): landmarks per frame,
interpolated where none is found, smoothed; the key frame's mask carried by each frame's square."""

from __future__ import annotations

import numpy as np
import pytest

from ilo_core.photo.alignment import aligned_mask
from ilo_core.sequences.tracking import FaceFollower, carry_mask, interpolate, smooth


def test_missing_frames_are_interpolated_and_the_ends_held():
    a, b = np.zeros((5, 2)), np.full((5, 2), 30.0)
    out = interpolate([None, a, None, None, b, None])
    assert np.allclose(out[0], 0) and np.allclose(out[2], 10) and np.allclose(out[3], 20) and np.allclose(out[5], 30)


def test_smoothing_keeps_a_still_face_and_a_steady_motion_and_removes_jitter():
    rng = np.random.default_rng(0)
    t = np.arange(40, dtype=float)[:, None, None]
    steady = (3 * t + 0.1 * t ** 2) * np.ones((40, 5, 2))
    assert np.allclose(smooth(steady), steady)  # an accelerating motion is not lagged, not even at the ends
    assert np.allclose(smooth(np.ones((10, 5, 2))), 1)
    jitter = steady + rng.normal(0, 1.0, steady.shape)
    assert np.abs(smooth(jitter) - steady).std() < 0.6 * np.abs(jitter - steady).std()


def test_the_face_is_followed_and_the_mask_moves_with_it(dcgan, moving_grace):
    clip = moving_grace
    follower = FaceFollower()
    for t in range(clip.frames):
        follower.add(clip.frame(t))
    track = follower.track(0, dcgan.face_frame, clip.hole(0))
    assert track.missing == [] and len(track.alignments) == clip.frames
    key = track.alignments[0]
    square = aligned_mask(clip.hole(0), key, 64)
    for t in range(clip.frames):
        # the square moves as the face does: its centre where the known motion takes the key frame's
        shift = clip.placement(t) @ np.linalg.pinv(np.vstack([clip.placement(0), [0, 0, 1]]))
        expected = shift[:, :2] @ key.quad.mean(0) + shift[:, 2]
        assert np.linalg.norm(track.alignments[t].quad.mean(0) - expected) < 0.05 * key.side
        carried, true = carry_mask(square, track.alignments[t]), clip.hole(t)
        assert (carried & true).sum() / (carried | true).sum() > 0.75  # the painted band follows the face


def test_a_frame_without_a_face_takes_its_neighbours_square_and_no_face_at_all_is_said(dcgan, moving_grace):
    follower = FaceFollower()
    for t in range(moving_grace.frames):
        frame = moving_grace.frame(t)
        follower.add(np.full_like(frame, 128) if t == 3 else frame)
    track = follower.track(0, dcgan.face_frame)
    assert track.missing == [3] and "no face found in 1 frame(s) (3)" in track.describe_missing()
    between = (track.alignments[2].quad + track.alignments[4].quad) / 2
    assert np.abs(track.alignments[3].quad - between).max() < 0.05 * track.alignments[3].side
    empty = FaceFollower()
    for _ in range(3):
        empty.add(np.full((120, 160, 3), 90, np.uint8))
    with pytest.raises(ValueError, match="no face was found in any frame"):
        empty.track(0, dcgan.face_frame)
