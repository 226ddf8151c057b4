"""What folders and clips cost: seconds per frame, photos per minute, peak memory.

    python -m ilo_core.evaluation.studies sequence_costs frames [--generator NAME] [--frames 6]
    python -m ilo_core.evaluation.studies sequence_costs folder --images DIR [--photos 24]
    python -m ilo_core.evaluation.studies sequence_costs memory [--seconds 60] [--fps 30]
    python -m ilo_core.evaluation.studies sequence_costs demo --image FACE --out DIR [--frames 24]

- frames: a moving example face (`moving_faces`) through `ClipRepair`, warm-started (and with
  `--independent` every frame on its own); seconds of the key frame (a full solve) and of the
  later frames, and their ratio. The
  generator: the embedded DCGAN, or `stylegan2-256-1` (a 256 px StyleGAN-2 with seeded random
  weights: the cost of the real thing, not its pictures).
- folder: `--photos` photos (DIR's, mirrored and repeated to make up the count) super-resolved
  by one `--image DIR` command and by one command per photo; photos per minute each way.
- memory: a `--seconds` s 720p clip of a moving face (written once, H.264) through the CLI with
  a short schedule, its peak RSS (the child's, from the kernel), and the same for a clip a
  sixth as long: frames are streamed, so the two should be close.
- demo: a moving face's clip (the input, its painted band shown) and its repair, every frame on
  its own and warm-started, side by side as one GIF and each as an MP4 in DIR.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ilo_core.checkpoints import load_generator
from ilo_core.engine.warm import WarmStart
from ilo_core.evaluation.benchmark import build_generator
from ilo_core.evaluation.moving_faces import MovingFace, moving_face
from ilo_core.photo.intake import PhotoTask
from ilo_core.sequences.clip_repair import ClipRepair, ClipRequest
from ilo_core.sequences.clips import probe_clip

ROOT = Path(__file__).resolve().parents[3]
FACE = ROOT / "assets" / "faces" / "grace_hopper_face.png"


def frames_cost(args: argparse.Namespace) -> None:
    generator = build_generator(args.generator, torch.device("cpu"), reference=False) \
        if args.generator.startswith("stylegan2-") else load_generator(args.generator)
    moving = moving_face(np.asarray(Image.open(FACE).convert("RGB")), generator.face_frame, args.frames)
    with tempfile.TemporaryDirectory() as folder:
        moving.write(Path(folder) / "frames")
        clip = probe_clip(Path(folder) / "frames")
        print(f"{args.generator} ({generator.resolution} px), {args.frames} frames, inpainting, this machine's "
              f"{torch.get_num_threads()} threads")
        runs = [("warm-started", WarmStart())] + ([("independent", None)] if args.independent else [])
        for name, warm in runs:
            work = Path(folder) / name
            work.mkdir()
            job = ClipRepair(generator, clip, ClipRequest(PhotoTask("inpaint"), warm=warm), moving.hole(0), work)
            for _ in job.run():
                pass
            key = job.solved[0]
            later = float(np.mean([s for t, s in job.solved.items() if t]))
            print(f"  {name:13s} key frame (a full solve) {key:7.2f} s   later frames {later:7.2f} s each   "
                  f"ratio {later / key:.3f}", flush=True)


def folder_throughput(args: argparse.Namespace) -> None:
    sources = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    with tempfile.TemporaryDirectory() as folder:
        photos = Path(folder) / "photos"
        photos.mkdir()
        k = 0
        while k < args.photos:
            for source in sources:
                if k == args.photos:
                    break
                image = Image.open(source).convert("RGB")
                if (k // len(sources)) % 2:
                    image = ImageOps.mirror(image)
                image.save(photos / f"photo_{k:03d}.png")
                k += 1
        common = ["--task", "super-resolution", "--quiet"]
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ilo_core", "solve", "--image", str(photos), "--out",
                        str(Path(folder) / "one"), *common], check=True, cwd=ROOT, capture_output=True)
        one = time.perf_counter() - started
        (Path(folder) / "each").mkdir()
        started = time.perf_counter()
        for photo in sorted(photos.iterdir()):
            subprocess.run([sys.executable, "-m", "ilo_core", "solve", "--image", str(photo), "--out",
                            str(Path(folder) / "each" / f"{photo.stem}_result.png"), "--repaired",
                            str(Path(folder) / "each" / photo.name), *common], check=True, cwd=ROOT,
                           capture_output=True)
        each = time.perf_counter() - started
    print(f"{args.photos} photos, super-resolution x4, default settings")
    print(f"  one --image DIR command: {one:6.1f} s  {60 * args.photos / one:5.1f} photos/min")
    print(f"  one command per photo:   {each:6.1f} s  {60 * args.photos / each:5.1f} photos/min")
    print(f"  ratio: {each / one:.2f}x the photos per minute")


def peak_rss_mb(command: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of a child process (run from a fresh helper, so that the
    children's maximum is its own)."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, time.perf_counter() - t)")
    done = subprocess.run([sys.executable, "-c", probe, *command], check=True, capture_output=True, text=True,
                          cwd=ROOT)
    rss, seconds = done.stdout.split()
    return float(rss), float(seconds)


def memory(args: argparse.Namespace) -> None:
    generator = load_generator("default")
    still = moving_face(np.asarray(Image.open(FACE).convert("RGB")), generator.face_frame, 2)
    source = np.asarray(Image.fromarray(still.source).resize((400, 400), Image.BICUBIC))
    hole = np.asarray(Image.fromarray(still.source_hole).resize((400, 400), Image.NEAREST))
    with tempfile.TemporaryDirectory() as folder:
        for seconds in (args.seconds / 6, args.seconds):
            count = int(round(seconds * args.fps))
            clip = MovingFace(source, hole, count, size=(1280, 720), shift=(300.0, 100.0))
            path = Path(folder) / f"clip_{count}.mp4"
            clip.write(path, fps=args.fps)
            Image.fromarray(clip.hole(0).astype(np.uint8) * 255).save(Path(folder) / "mask.png")
            rss, wall = peak_rss_mb([sys.executable, "-m", "ilo_core", "solve", "--image", str(path), "--task",
                                     "inpaint", "--mask", str(Path(folder) / "mask.png"), "--steps", "2,2,2,2",
                                     "--warm-steps", "1", "--out", str(Path(folder) / "out.mp4"), "--quiet"])
            print(f"{seconds:5.0f} s of 1280 x 720 at {args.fps:g} fps ({count} frames): peak RSS {rss:7.0f} MB, "
                  f"{wall:6.0f} s", flush=True)


def demo(args: argparse.Namespace) -> None:
    generator = load_generator("default")
    moving = moving_face(np.asarray(Image.open(args.image).convert("RGB")), generator.face_frame, args.frames)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        moving.write(Path(folder) / "frames")
        clip = probe_clip(Path(folder) / "frames")
        moving.write(args.out / "input.mp4")
        painted = []
        for t in range(args.frames):
            frame = moving.frame(t).copy()
            frame[moving.hole(t)] = (frame[moving.hole(t)] * 0.3 + np.array([255, 0, 255]) * 0.7).astype(np.uint8)
            painted.append(frame)
        columns = [painted]
        for name, warm in (("independent", None), ("warm", WarmStart())):
            work = Path(folder) / name
            work.mkdir()
            job = ClipRepair(generator, clip, ClipRequest(PhotoTask("inpaint"), warm=warm), moving.hole(0), work)
            for _ in job.run():
                pass
            frames: list[np.ndarray] = []
            job.write(args.out / f"repaired_{name}.mp4", frame_hook=lambda t, frame: frames.append(frame))
            columns.append(frames)
    strip = [Image.fromarray(np.concatenate([c[t] for c in columns], axis=1)) for t in range(args.frames)]
    small = [im.resize((im.width * 2 // 3, im.height * 2 // 3), Image.LANCZOS) for im in strip]
    small[0].save(args.out / "input_independent_warm.gif", save_all=True, append_images=small[1:], duration=80,
                  loop=0)
    print(f"{args.out}: input.mp4, repaired_independent.mp4, repaired_warm.mp4, input_independent_warm.gif")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    f = sub.add_parser("frames")
    f.add_argument("--generator", default="default")
    f.add_argument("--frames", type=int, default=6)
    f.add_argument("--independent", action="store_true", help="also every frame on its own")
    d = sub.add_parser("folder")
    d.add_argument("--images", type=Path, default=ROOT / "assets" / "faces")
    d.add_argument("--photos", type=int, default=24)
    m = sub.add_parser("memory")
    m.add_argument("--seconds", type=float, default=60.0)
    m.add_argument("--fps", type=float, default=30.0)
    g = sub.add_parser("demo")
    g.add_argument("--image", type=Path, required=True)
    g.add_argument("--out", type=Path, required=True)
    g.add_argument("--frames", type=int, default=24)
    args = parser.parse_args()
    {"frames": frames_cost, "folder": folder_throughput, "memory": memory, "demo": demo}[args.what](args)
