"""The page's clips, end to end through a launched page: a clip's key frame in the canvas, the
whole clip repaired and played back, Stop keeping the frames done, a bad clip in one sentence."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from conftest import write_video
from ilo_core.sequences.clips import probe_clip

INPAINT = "Inpainting (paint the region)"


@pytest.fixture(scope="module")
def clip_and_layer(tmp_path_factory, moving_grace):
    folder = tmp_path_factory.mktemp("page_clip")
    video = write_video(folder / "face.mp4", [moving_grace.frame(t) for t in range(moving_grace.frames)])
    layer = np.zeros((240, 288, 4), np.uint8)
    layer[moving_grace.hole(0)] = (255, 0, 255, 255)  # painted on the key frame, in its pixels
    Image.fromarray(layer, "RGBA").save(folder / "layer.png")
    return video, folder / "layer.png"


def clip_args(handle_file, editor, video, steps=6, key=0, **overrides):
    return dict(editor=editor, task=INPAINT, mode="Simulate: my photo is clean", method="ILO",
                steps_layer_0=steps, steps_layer_1=steps, steps_layer_2=steps, steps_layer_3=steps,
                clip=handle_file(str(video)), key_frame=key, **overrides)


def path_of(value) -> str:
    if isinstance(value, dict):
        value = value.get("video", value)
    return value if isinstance(value, str) else value.get("path") or value.get("name")


def test_a_clip_shows_its_key_frame_and_is_repaired_whole(served_app, clip_and_layer):
    from gradio_client import Client, handle_file

    video, layer = clip_and_layer
    client = Client(served_app, verbose=False)
    editor, slider, note = client.predict(handle_file(str(video)), api_name="/clip")
    background = path_of(editor["background"])
    assert Image.open(background).size == (288, 240) and "8 frames at 25 fps" in note
    painted = {"background": handle_file(background), "layers": [handle_file(str(layer))],
               "composite": handle_file(background)}
    job = client.submit(**clip_args(handle_file, painted, video), api_name="/run_clip")
    status, preview, clip, files, gif = job.result(timeout=600)
    statuses = [o[0] for o in job.outputs()]
    assert any("frame 5 of 8" in s for s in statuses) and any("s left" in s for s in statuses)
    assert "Repaired all 8 frames" in status
    out = probe_clip(path_of(clip))
    assert (out.frames, out.width, out.height) == (8, 288, 240)
    assert Image.open(path_of(gif)).n_frames > 2  # the key frame's progression, layer by layer


def test_stop_keeps_the_frames_done_and_says_where(served_app, clip_and_layer):
    from gradio_client import Client, handle_file

    video, layer = clip_and_layer
    client = Client(served_app, verbose=False)
    editor, _, _ = client.predict(handle_file(str(video)), api_name="/clip")
    background = path_of(editor["background"])
    painted = {"background": handle_file(background), "layers": [handle_file(str(layer))],
               "composite": handle_file(background)}
    job = client.submit(**clip_args(handle_file, painted, video, steps=40), api_name="/run_clip")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not any("frame 3 of 8" in (o[0] or "") for o in job.outputs()):
        time.sleep(0.2)
    client.predict(api_name="/stop")
    status, _, clip, _, _ = job.result(timeout=300)
    assert "Stopped" in status and "the clip has frames 0 to" in status
    frames = probe_clip(path_of(clip)).frames
    assert 2 <= frames < 8 and f"({frames} frames)" in status


def test_a_bad_clip_is_one_sentence_and_the_page_keeps_serving(served_app, tmp_path, clip_and_layer):
    from gradio_client import Client, handle_file

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500)
    client = Client(served_app, verbose=False)
    _, _, note = client.predict(handle_file(str(bad)), api_name="/clip")
    assert note.startswith("**Not used:** The file broken.mp4 is not a video that can be read")
    editor, _, _ = client.predict(handle_file(str(clip_and_layer[0])), api_name="/clip")
    assert editor["background"] is not None
