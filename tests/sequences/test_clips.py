"""Clips in and out (`ilo_core.sequences.clips`): metadata before decoding, frames streamed,
outputs whole or not at all, audio carried, one clear sentence for each bad clip."""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from conftest import write_video
from ilo_core.sequences import clips
from ilo_core.sequences.clips import ClipError, ClipWriter, is_clip, probe_clip, read_frames


def frames(count: int = 10, size=(64, 48)) -> list[np.ndarray]:
    """Frames with a bright bar moving across: each one different."""
    out = []
    for t in range(count):
        frame = np.full((size[1], size[0], 3), 40, np.uint8)
        frame[:, 4 * t:4 * t + 8] = 220
        out.append(frame)
    return out


def test_a_video_is_read_by_its_metadata_then_frame_by_frame(tmp_path):
    path = write_video(tmp_path / "clip.mp4", frames(10), fps=20, audio_seconds=0.5)
    info = probe_clip(path)
    assert (info.source, info.width, info.height, info.frames, info.fps, info.has_audio) == \
        ("video", 64, 48, 10, 20.0, True)
    decoded = list(read_frames(info))
    assert len(decoded) == 10 and decoded[0].shape == (48, 64, 3) and decoded[0].dtype == np.uint8
    # lossy, but the moving bar is where it was put
    assert decoded[3][:, 14].mean() > 150 and decoded[3][:, 40].mean() < 100


def test_a_repaired_video_keeps_the_rate_and_the_audio_up_to_its_last_frame(tmp_path):
    source = probe_clip(write_video(tmp_path / "clip.mp4", frames(10), fps=20, audio_seconds=0.5))
    with ClipWriter(tmp_path / "out.mp4", source.fps, (64, 48), source) as writer:
        for frame in list(read_frames(source))[:6]:
            writer.write(frame)
    assert writer.audio_note == "audio copied from the input"
    out = probe_clip(tmp_path / "out.mp4")
    assert (out.frames, out.fps, out.has_audio) == (6, 20.0, True)
    with av.open(str(tmp_path / "out.mp4")) as container:
        audio = container.streams.audio[0]
        seconds = sum(float(p.duration * audio.time_base) for p in container.demux(audio) if p.duration)
    assert 0.2 < seconds < 0.4  # 6 frames at 20 fps: 0.3 s of the 0.5 s of sound


def test_png_frames_and_a_folder_of_frames_and_an_animated_gif(tmp_path):
    with ClipWriter(tmp_path / "frames", 12.0, (64, 48)) as writer:
        for frame in frames(5):
            writer.write(frame)
    files = sorted((tmp_path / "frames").iterdir())
    assert [f.name for f in files] == [f"frame_{k:06d}.png" for k in range(5)]
    assert np.array_equal(np.asarray(Image.open(files[2])), frames(5)[2])  # lossless
    assert writer.audio_note == "the input has no audio"
    info = probe_clip(tmp_path / "frames", fps=12)
    assert (info.source, info.frames, info.fps) == ("frames", 5, 12.0)
    assert np.array_equal(list(read_frames(info))[4], frames(5)[4])
    assert is_clip(tmp_path / "frames", folder_is_clip=True) and not is_clip(tmp_path / "frames")
    images = [Image.fromarray(f) for f in frames(4)]
    images[0].save(tmp_path / "anim.gif", save_all=True, append_images=images[1:], duration=50, loop=0)
    images[0].save(tmp_path / "still.gif")
    assert is_clip(tmp_path / "anim.gif") and not is_clip(tmp_path / "still.gif")
    anim = probe_clip(tmp_path / "anim.gif")
    assert (anim.source, anim.frames, anim.fps) == ("animation", 4, 20.0)
    assert len(list(read_frames(anim))) == 4
    images[0].save(tmp_path / "anim.webp", save_all=True, append_images=images[1:], duration=40, lossless=True)
    webp = probe_clip(tmp_path / "anim.webp")
    assert is_clip(tmp_path / "anim.webp") and (webp.source, webp.frames, webp.fps) == ("animation", 4, 25.0)
    assert np.array_equal(list(read_frames(webp))[3], frames(4)[3])


def test_an_output_is_whole_or_absent(tmp_path):
    for name in ("out.mp4", "frames"):
        with pytest.raises(RuntimeError):
            with ClipWriter(tmp_path / name, 10.0, (64, 48)) as writer:
                writer.write(frames(1)[0])
                raise RuntimeError("the job failed half-way")
        assert not (tmp_path / name).exists()
    assert list(tmp_path.iterdir()) == []  # no partial file or folder left beside it
    with pytest.raises(ValueError, match="written as"):
        ClipWriter(tmp_path / "out.avi", 10.0, (64, 48))
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "holiday.jpg").write_bytes(b"a person's photo")
    with pytest.raises(ValueError, match="holds other files"):
        ClipWriter(tmp_path / "photos", 10.0, (64, 48))
    assert (tmp_path / "photos" / "holiday.jpg").exists()


def test_bad_clips_are_one_sentence_each(tmp_path):
    good = write_video(tmp_path / "clip.mp4", frames(10))
    (tmp_path / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp_path / "text.mp4").write_text("not a video at all\n" * 50)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with av.open(str(tmp_path / "sound.mp4"), "w") as container:  # a file with sound and no picture
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="fltp", layout="mono")
        chunk.sample_rate = 16000
        for packet in [*stream.encode(chunk), *stream.encode()]:
            container.mux(packet)
    expected = {"truncated.mp4": "not a video that can be read", "text.mp4": "not a video that can be read",
                "empty.mp4": "is empty", "sound.mp4": "has no video stream"}
    for name, words in expected.items():
        with pytest.raises(ClipError, match=words) as caught:
            info = probe_clip(tmp_path / name)
            list(read_frames(info))
        message = str(caught.value)
        assert "\n" not in message and message.endswith(".") and message[0].isupper()
    varying = tmp_path / "varying"
    varying.mkdir()
    Image.fromarray(frames(1)[0]).save(varying / "f1.png")
    Image.fromarray(frames(1, size=(66, 48))[0]).save(varying / "f2.png")
    with pytest.raises(ClipError, match="not all one size"):
        probe_clip(varying)


def test_a_clip_over_the_limits_is_refused_by_its_metadata(tmp_path, monkeypatch):
    path = write_video(tmp_path / "clip.mp4", frames(10))
    images = [Image.fromarray(f) for f in frames(10)]
    images[0].save(tmp_path / "anim.gif", save_all=True, append_images=images[1:], duration=50)
    monkeypatch.setattr(clips, "MAX_FRAMES", 5)
    for clip in (path, tmp_path / "anim.gif"):
        with pytest.raises(ClipError, match="10 frames; the limit is 5 frames"):
            probe_clip(clip)
    monkeypatch.setattr(clips, "MAX_FRAMES", 100)
    monkeypatch.setattr(clips, "MAX_FRAME_PIXELS", 1000)
    with pytest.raises(ClipError, match="frames of 64 × 48 px"):
        probe_clip(path)
    monkeypatch.setattr(clips, "MAX_FRAME_PIXELS", 10**8)
    monkeypatch.setattr(clips, "MAX_SECONDS", 0.2)
    with pytest.raises(ClipError, match="lasts 0 s"):
        probe_clip(path)
