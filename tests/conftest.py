"""Shared fixtures and helpers: the embedded generator, the reference StyleGAN-2, example faces,
the launched page, the CLI as a subprocess.

The golden reference data ships with the repository (`tests/data/reference/`, unpacked by
`reference_data.reference_dir`), so a fresh clone runs every test CI runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reference_data import reference_dir

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = reference_dir()
FACES = ROOT / "assets" / "faces"

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def dcgan():
    """The embedded DCGAN as the engine uses it (accelerated)."""
    from ilo_core.checkpoints import load_generator

    return load_generator("default", reference=False)


@pytest.fixture(scope="session")
def dcgan_plain():
    """The plain DCGAN model (the tutorial's modules)."""
    from ilo_core.generators import DCGANGenerator

    return DCGANGenerator.load()


@pytest.fixture(scope="session")
def stylegan64_plain(tmp_path_factory):
    """rosinality's 64 px StyleGAN-2 as the plain model (per-sample modulated weights)."""
    from ilo_core.checkpoints.loading import load_stylegan2

    return load_stylegan2(REFERENCE / "rosinality_g64.pt", cache_dir=tmp_path_factory.mktemp("fit"))


@pytest.fixture(scope="session")
def stylegan64(tmp_path_factory):
    """The same weights as the engine uses them (accelerated)."""
    from ilo_core.accelerate import accelerate
    from ilo_core.checkpoints.loading import load_stylegan2

    gen = load_stylegan2(REFERENCE / "rosinality_g64.pt", cache_dir=tmp_path_factory.mktemp("fit"))
    return accelerate(gen, reference=False)


@pytest.fixture(scope="session")
def reference_renders():
    return torch.load(REFERENCE / "rosinality_g64_reference.pt", weights_only=True)


@pytest.fixture(scope="session")
def faces64():
    from ilo_core.photo.images import load_image

    return [load_image(FACES / name, 64) for name in ("astronaut_face.png", "grace_hopper_face.png")]


# --- helpers the tests of several wings share --------------------------------------------


def write_mask(path, size: tuple[int, int], rows: slice, cols: slice):
    """A mask PNG of `size` (height, width), white (missing) over rows x cols; returns its path."""
    mask = np.zeros(size, dtype=np.uint8)
    mask[rows, cols] = 255
    Image.fromarray(mask).save(path)
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ilo_core", "solve", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def mask_layer(tmp_path, box=(60, 150, 200, 200), size=(256, 256)) -> str:
    """A transparent RGBA layer with an opaque painted rectangle, as ImageMask sends it."""
    layer = np.zeros((*size, 4), dtype=np.uint8)
    layer[box[1]:box[3], box[0]:box[2]] = (255, 0, 255, 255)
    path = tmp_path / "layer.png"
    Image.fromarray(layer, "RGBA").save(path)
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served_app(dcgan):
    import app

    demo = app.build_demo(dcgan)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def write_video(path, frames: list[np.ndarray], fps: float = 25.0, audio_seconds: float = 0.0) -> Path:
    """An H.264 MP4 of `frames` (H x W x 3 uint8, even sizes) written by PyAV directly (not by
    the code under test), with a mono AAC sine of `audio_seconds` when > 0."""
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=int(fps))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=16000) if audio_seconds else None
        if audio is not None:
            audio.layout = "mono"
        for frame in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            wave = (0.3 * np.sin(np.arange(int(16000 * audio_seconds)) / 5)).astype(np.float32)[None]
            chunk = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
            chunk.sample_rate = 16000
            for packet in [*audio.encode(chunk), *audio.encode()]:
                container.mux(packet)
    return Path(path)


@pytest.fixture(scope="session")
def moving_grace(dcgan):
    """An 8-frame `MovingFace` of an example face, framed for the embedded DCGAN: a quarter of the
    study's loop (`moving_faces`), 2-4 px a frame, as a head moves at 25 fps."""
    from ilo_core.evaluation.moving_faces import moving_face

    return moving_face(np.asarray(Image.open(FACES / "grace_hopper_face.png").convert("RGB")), dcgan.face_frame,
                       frames=8, loop=0.25, dim=0.05)


# --- a local Ray cluster (tests/cluster): a head on 127.0.0.1 only (Ray's single-machine mode) with
# 2 CPUs, so 2 workers run cells at once; started by the first test that asks for it, stopped after the last
RAY = Path(sys.executable).parent / "ray"
LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def local_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **LOCAL_ENV, "PYTHONPATH": str(ROOT), **extra}
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory):
    """'127.0.0.1:PORT' of a running 2-CPU Ray head, with token authentication (its token in a
    file of the test's, named to every process by local_env)."""
    token = tmp_path_factory.mktemp("ray") / "token"
    token.write_text(os.urandom(16).hex())
    LOCAL_ENV.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    port = free_port()
    started = subprocess.run([str(RAY), "start", "--head", f"--port={port}", "--num-cpus=2", "--num-gpus=0",
                              "--include-dashboard=false", "--disable-usage-stats"],
                             env=local_env(), capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(RAY), "stop", "--force"], env=local_env(), capture_output=True, timeout=120)
