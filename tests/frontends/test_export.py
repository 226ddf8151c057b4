"""The progression GIF: every frame there, in order, faithful to the frames recorded."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np

from ilo_core.frontends.export import FrameRecorder, label_frame


def test_the_gif_holds_the_recorded_frames_and_the_final_image(faces64, tmp_path):
    recorder = FrameRecorder()
    clean = faces64[0]
    for step in range(12):
        recorder.add(clean * (step / 11), 0, 0, step)
    path = recorder.save_gif(tmp_path / "p.gif", final=faces64[1])
    frames = iio.imread(path, index=None)
    assert frames.shape[0] >= 13 and frames.shape[1:3] == (274, 256)
    assert np.abs(frames[5][..., :3].astype(int) - recorder.frames[5]).mean() < 5  # 256 colours
    final = label_frame(faces64[1], "best result")
    assert np.abs(frames[-1][..., :3].astype(int) - final).mean() < 5  # the best result is held at the end
    assert list(tmp_path.iterdir()) == [path]


def test_an_empty_recorder_cannot_write_a_gif(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="no frames"):
        FrameRecorder().save_gif(tmp_path / "p.gif")
    assert not (tmp_path / "p.gif").exists()
