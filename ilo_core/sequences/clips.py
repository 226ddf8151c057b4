"""Clips in and out: a video file, an animated GIF / WebP, or a folder of numbered frames,
read frame by frame (H x W x 3 uint8), never whole; the repaired frames written as a video or
as numbered lossless PNGs, whole or not at all.

Video goes through PyAV (`av` on PyPI): its wheels bring their own FFmpeg libraries (no system
ffmpeg), it decodes in process one frame at a time, it reads a container's metadata (frame
size, count, rate, streams) before any frame is decoded, and it copies the audio stream's
packets into the output untouched. GIF and animated WebP go through Pillow, which seeks frame
by frame. A clip is refused by its metadata before decoding when it is over the limits below.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from ilo_core.atomic import atomic_write, regular_file
from ilo_core.photo.images import ImageError, image_size
from ilo_core.photo.intake import InputError

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v")
ANIMATION_SUFFIXES = (".gif", ".webp")  # read by Pillow (animated WebP: FFmpeg's WebP decoder reads stills only)
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
OUTPUT_VIDEO_SUFFIXES = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}
MAX_FRAME_PIXELS = 3840 * 2160   # a 4K UHD frame
MAX_FRAMES = 18_000               # 10 minutes at 30 fps
MAX_SECONDS = 600.0
FOLDER_FPS = 25.0                 # a folder of frames has no rate of its own: this one unless given


class ClipError(InputError):
    """A clip that cannot be used; the message is one sentence."""


@dataclass(frozen=True)
class ClipInfo:
    """What a clip's metadata says, before any frame is decoded."""

    path: Path
    source: str         # what it is read from: "video", "animation" or "frames"
    width: int
    height: int
    frames: int         # from the metadata (a video's may be an estimate from its duration)
    fps: float
    has_audio: bool = False
    frame_files: tuple[Path, ...] = ()  # kind "frames": the files in order

    @property
    def seconds(self) -> float:
        return self.frames / self.fps if self.fps > 0 else 0.0

    def describe(self) -> str:
        audio = ", with audio" if self.has_audio else ""
        return f"{self.width} × {self.height} px, {self.frames} frames at {self.fps:.4g} fps ({self.seconds:.1f} s{audio})"


def is_clip(path: str | Path, folder_is_clip: bool = False) -> bool:
    """Whether `path` names a clip: a video file, an animated GIF / WebP (more than one frame),
    or (`folder_is_clip`) a folder of frames."""
    path = Path(path)
    if path.is_dir():
        return folder_is_clip
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return True
    if suffix in ANIMATION_SUFFIXES and path.is_file():
        try:
            with Image.open(path) as image:
                return getattr(image, "n_frames", 1) > 1
        except (OSError, ValueError):
            return False
    return False


def _check_limits(name: str, width: int, height: int, frames: int, fps: float) -> None:
    if width * height > MAX_FRAME_PIXELS:
        raise ClipError(f"The clip {name} has frames of {width} × {height} px; the limit is {MAX_FRAME_PIXELS / 1e6:.1f} "
                        f"megapixels a frame (4K UHD): scale the clip down first.")
    if frames > MAX_FRAMES:
        raise ClipError(f"The clip {name} has {frames} frames; the limit is {MAX_FRAMES} frames: cut the clip first.")
    if fps > 0 and frames / fps > MAX_SECONDS:
        raise ClipError(f"The clip {name} lasts {frames / fps:.0f} s; the limit is {MAX_SECONDS:.0f} s: cut the clip first.")


def probe_clip(path: str | Path, fps: float | None = None) -> ClipInfo:
    """A clip's `ClipInfo` from its metadata alone, its limits checked (ClipError, one sentence).
    A folder is a clip of its numbered frames (ordered by the number in their names) at `fps`
    (default FOLDER_FPS); every frame's size is read from its header."""
    path = Path(path)
    if path.is_dir():
        return _probe_folder(path, fps or FOLDER_FPS)
    try:
        regular_file(path, "clip", ClipError)
    except ClipError as err:
        raise ClipError(f"{str(err)[:1].upper()}{str(err)[1:]}.") from None
    if path.stat().st_size == 0:
        raise ClipError(f"The clip {path.name} is empty (0 bytes).")
    if path.suffix.lower() in ANIMATION_SUFFIXES:
        return _probe_animation(path)
    return _probe_video(path)


def _probe_video(path: Path) -> ClipInfo:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ClipError(f"The file {path.name} has no video stream (is it a sound file?).")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            frames = int(stream.frames or 0)
            if not frames:
                duration = (float(stream.duration * stream.time_base) if stream.duration is not None
                            else (container.duration or 0) / 1_000_000)
                frames = int(round(duration * fps))
            has_audio = bool(container.streams.audio)
    except ClipError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise ClipError(f"The file {path.name} is not a video that can be read (corrupt, truncated or not a video: "
                        f"{type(err).__name__}).") from None
    if width <= 0 or height <= 0 or fps <= 0:
        raise ClipError(f"The clip {path.name} has no readable frame size or frame rate (corrupt or truncated?).")
    _check_limits(path.name, width, height, frames, fps)
    return ClipInfo(path, "video", width, height, frames, fps, has_audio)


def _probe_animation(path: Path) -> ClipInfo:
    try:
        with Image.open(path) as image:
            width, height = image.size
            frames = getattr(image, "n_frames", 1)
            _check_limits(path.name, width, height, frames, 0.0)
            if "duration" not in image.info:  # WebP says it once its first frame is read
                image.load()
            duration = image.info.get("duration") or 100  # ms per frame
    except ClipError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ClipError(f"The file {path.name} is not an animation that can be read ({type(err).__name__}).") from None
    fps = 1000.0 / max(float(duration), 1.0)
    _check_limits(path.name, width, height, frames, fps)
    return ClipInfo(path, "animation", width, height, frames, fps)


def _number(path: Path) -> tuple[int, str]:
    found = re.findall(r"\d+", path.stem)
    return (int(found[-1]) if found else -1, path.name)


def _probe_folder(path: Path, fps: float) -> ClipInfo:
    files = sorted((p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file()), key=_number)
    if not files:
        raise ClipError(f"The folder {path.name} holds no frames ({', '.join(FRAME_SUFFIXES)} files).")
    sizes = []
    for file in files:
        try:
            sizes.append(image_size(file))
        except ImageError as err:
            raise ClipError(f"The frame {file.name}: {err}.") from None
    width, height = sizes[0]
    for file, size in zip(files, sizes):
        if size != (width, height):
            raise ClipError(f"The frames are not all one size: {files[0].name} is {width} × {height} px, "
                            f"{file.name} is {size[0]} × {size[1]} px.")
    _check_limits(path.name, width, height, len(files), fps)
    return ClipInfo(path, "frames", width, height, len(files), fps, frame_files=tuple(files))


def read_frames(info: ClipInfo) -> Iterator[np.ndarray]:
    """The clip's frames in order, H x W x 3 uint8, one at a time. A frame of another size than
    the first, or a decoding error, is a ClipError naming the frame."""
    if info.source == "frames":
        source = (np.asarray(Image.open(p).convert("RGB")) for p in info.frame_files)
    elif info.source == "animation":
        source = _animation_frames(info.path)
    else:
        source = _video_frames(info.path)
    index = -1
    try:
        for index, frame in enumerate(source):
            if frame.shape[:2] != (info.height, info.width):
                raise ClipError(f"Frame {index} is {frame.shape[1]} × {frame.shape[0]} px but the clip is "
                                f"{info.width} × {info.height} px: frames of varying size are not supported.")
            yield frame
    except ClipError:
        raise
    except Exception as err:  # a decoder's error on a damaged frame, whatever its type
        raise ClipError(f"The clip {info.path.name} could not be decoded after frame {index} (corrupt or truncated: "
                        f"{type(err).__name__}).") from None


def _animation_frames(path: Path) -> Iterator[np.ndarray]:
    with Image.open(path) as image:
        for k in range(getattr(image, "n_frames", 1)):
            image.seek(k)
            yield np.asarray(image.convert("RGB"))


def _video_frames(path: Path) -> Iterator[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")


def output_kind(path: str | Path) -> str:
    """"video" for a video file name, "frames" for a folder (existing or not, no suffix); else ValueError."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in OUTPUT_VIDEO_SUFFIXES:
        return "video"
    if path.is_dir() or not suffix:
        return "frames"
    raise ValueError(f"{path}: a repaired clip is written as {', '.join(OUTPUT_VIDEO_SUFFIXES)} "
                     f"or into a folder of PNG frames")


class ClipWriter:
    """Writes frames (H x W x 3 uint8, all `size` = (width, height)) as a video
    (`OUTPUT_VIDEO_SUFFIXES`: H.264 or VP9 at `fps`, the audio of `audio_from` copied packet for
    packet as the frames go, up to the last frame's time) or as numbered PNG frames in a folder.
    Use as a context manager: the output appears whole when the block ends without an error and
    not at all otherwise (a video through `atomic_write`; frames in a hidden folder renamed into
    place, over an earlier clip's frames but never over other files). An odd width or height is padded by one replicated pixel row / column in a video
    (yuv420p needs even sizes)."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], audio_from: ClipInfo | None = None) -> None:
        self.path = Path(path)
        self.form = output_kind(self.path)
        if self.form == "frames" and self.path.is_dir():  # replaced whole: only an earlier clip's frames may go
            others = [p.name for p in self.path.iterdir() if not re.fullmatch(r"frame_\d{6}\.png", p.name)]
            if others:
                raise ValueError(f"{self.path} holds other files ({others[0]}, ...): the frames go into a new or "
                                 f"empty folder, or one of an earlier clip's frames")
        self.fps = fps
        self.size = size
        self.audio_from = audio_from if audio_from is not None and audio_from.has_audio \
            and audio_from.source == "video" and self.form == "video" else None
        self.count = 0
        self.audio_note = "the input has no audio" if audio_from is None or not audio_from.has_audio else \
            ("frames only: PNG frames carry no audio" if self.form == "frames" else "")

    def __enter__(self) -> "ClipWriter":
        if self.form == "frames":
            self._folder = self.path.parent / f".{self.path.name}.{secrets.token_hex(4)}.partial"
            self._folder.mkdir()
            return self
        import av

        self._file_context = atomic_write(self.path)
        self._file = self._file_context.__enter__()
        try:
            self._container = av.open(self._file, "w", format={".webm": "webm", ".mkv": "matroska",
                                                               ".mov": "mov"}.get(self.path.suffix.lower(), "mp4"))
            codec = OUTPUT_VIDEO_SUFFIXES[self.path.suffix.lower()]
            self._stream = self._container.add_stream(codec, rate=Fraction(self.fps).limit_denominator(1001))
            self._stream.width, self._stream.height = self.size[0] + self.size[0] % 2, self.size[1] + self.size[1] % 2
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": "18"} if codec == "libx264" else {"crf": "24", "b": "0"}
            self._audio = None
            if self.audio_from is not None:
                self._open_audio()
        except BaseException as err:
            self._file_context.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    def _open_audio(self) -> None:
        import av

        try:
            self._source = av.open(str(self.audio_from.path))
            source_stream = self._source.streams.audio[0]
            self._audio_out = self._container.add_stream_from_template(source_stream)
            self._audio = (source_stream, self._source.demux(source_stream))
            self._pending = None
            self.audio_note = "audio copied from the input"
        except (av.error.FFmpegError, ValueError, IndexError) as err:
            self._audio = None
            self.audio_note = f"the input's audio could not be copied ({type(err).__name__}): the clip is silent"

    def write(self, frame: np.ndarray) -> None:
        if self.form == "frames":
            Image.fromarray(frame).save(self._folder / f"frame_{self.count:06d}.png", compress_level=4)
        else:
            import av

            frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")
            for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                self._container.mux(packet)
        self.count += 1
        if self.form == "video":
            self._audio_until(self.count / self.fps)

    def _audio_until(self, seconds: float) -> None:
        """Mux the input's audio packets that start before `seconds`."""
        if self._audio is None:
            return
        stream, packets = self._audio
        while True:
            packet = self._pending
            if packet is None:
                packet = next(packets, None)
                if packet is None:
                    self._audio = None
                    return
            if packet.dts is None:
                self._pending = None
                continue
            if packet.pts is not None and float(packet.pts * stream.time_base) >= seconds:
                self._pending = packet
                return
            self._pending = None
            packet.stream = self._audio_out
            self._container.mux(packet)

    def __exit__(self, kind, value, traceback) -> bool:
        if self.form == "frames":
            if kind is None and self.count:
                if self.path.exists():
                    old = self.path.parent / f".{self.path.name}.{secrets.token_hex(4)}.old"
                    os.replace(self.path, old)
                    os.replace(self._folder, self.path)
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    os.replace(self._folder, self.path)
            else:
                shutil.rmtree(self._folder, ignore_errors=True)
            return False
        try:
            if getattr(self, "_source", None) is not None:
                self._audio = None
                self._source.close()
            if kind is None:
                if not self.count:
                    raise ValueError("no frame was written: the clip would be empty")
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
        except BaseException as err:
            self._file_context.__exit__(type(err), err, err.__traceback__)
            raise
        self._file_context.__exit__(kind, value, traceback)
        return False
