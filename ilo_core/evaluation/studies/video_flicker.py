"""Warm-started clips against every frame solved on its own: flicker, hole PSNR and cost.

    python -m ilo_core.evaluation.studies video_flicker --images DIR [--frames 48] [--out FILE.json]
        [--warm STEPS:ROUNDS:SHARE:CARRY ...] [--generator NAME] [--task inpaint]

Each face in DIR (default: the example faces in assets/; the held-out faces of
`held_out_faces` are the ones nobody tuned on) becomes a clip whose truth is known
(`ilo_core.evaluation.moving_faces`: smooth translation, rotation, scale and a brightness ramp
inside a larger frame, the painted band over eyes and nose fixed on the face). The clip goes
through the CLI's own job (`ClipRepair`: the face followed, the mask carried, frames posed and
pasted back) once with every frame solved on its own and once per warm setting (the first is
the default). Per face and in the mean over faces: flicker (`ilo_core.sequences.flicker`:
temporal warping error in the true hole minus the true frames'), hole PSNR per frame in the
frame's pixels, and seconds per frame (the key frame, the others, their ratio).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ilo_core.atomic import write_json
from ilo_core.checkpoints import load_generator
from ilo_core.engine.warm import WarmStart
from ilo_core.evaluation.moving_faces import moving_face
from ilo_core.photo.intake import PhotoTask
from ilo_core.sequences.clip_repair import ClipRepair, ClipRequest
from ilo_core.sequences.clips import probe_clip
from ilo_core.sequences.flicker import flicker, region_psnr

ASSETS = Path(__file__).resolve().parents[3] / "assets" / "faces"


def warm_setting(text: str) -> WarmStart:
    steps, rounds, share, carry = text.split(":")
    return WarmStart(steps=int(steps), rounds=int(rounds), radius_share=float(share), carry=float(carry)).validate()


def repair(generator, clip, true_hole: np.ndarray, task: str, warm: WarmStart | None) -> tuple[list, dict]:
    """The clip repaired by `ClipRepair`: its frames and each frame's solve seconds."""
    with tempfile.TemporaryDirectory() as work:
        job = ClipRepair(generator, clip, ClipRequest(PhotoTask(task), warm=warm), true_hole, work)
        for _ in job.run():
            pass
        frames: list[np.ndarray] = []
        job.write(Path(work) / "out", frame_hook=lambda t, frame: frames.append(frame))
    return frames, dict(job.solved)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=ASSETS)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--generator", default="default")
    parser.add_argument("--task", default="inpaint", choices=("inpaint", "super-resolution", "denoise"))
    parser.add_argument("--warm", nargs="*", type=warm_setting, default=None,
                        help="warm settings STEPS:ROUNDS:SHARE:CARRY (default: the default's alone)")
    parser.add_argument("--out", type=Path, help="write every figure as JSON")
    args = parser.parse_args()
    generator = load_generator(args.generator)
    warms = args.warm or [WarmStart()]
    faces = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    names = ["independent"] + [f"warm {w.steps}x{w.rounds} r{w.radius_share:g} c{w.carry:g}" for w in warms]
    rows: dict[str, list[dict]] = {name: [] for name in names}
    for face in faces:
        try:
            moving = moving_face(np.asarray(Image.open(face).convert("RGB")), generator.face_frame, args.frames)
        except ValueError as err:
            print(f"{face.name}: skipped ({err})", file=sys.stderr)
            continue
        true = [moving.frame(t) for t in range(args.frames)]
        holes = [moving.hole(t) for t in range(args.frames)]
        motions = [None] + [moving.motion(t) for t in range(1, args.frames)]
        with tempfile.TemporaryDirectory() as folder:
            moving.write(Path(folder) / "frames")  # lossless PNG frames: the study measures the repair, not a codec
            clip = probe_clip(Path(folder) / "frames")
            for name, warm in zip(names, [None, *warms]):
                started = time.perf_counter()
                frames, seconds = repair(generator, clip, holes[0], args.task, warm)
                others = [s for t, s in seconds.items() if t != 0]
                row = {"face": face.name, "flicker": flicker(frames, true, motions, holes),
                       "hole_psnr": float(np.mean([region_psnr(f, g, h) for f, g, h in zip(frames, true, holes)])),
                       "key_seconds": seconds[0], "frame_seconds": float(np.mean(others)),
                       "wall_seconds": time.perf_counter() - started}
                rows[name].append(row)
                print(f"{face.name:24s} {name:26s} flicker {row['flicker']:6.2f}  hole PSNR {row['hole_psnr']:6.2f} dB"
                      f"  key {row['key_seconds']:5.2f} s  frame {row['frame_seconds']:5.2f} s", flush=True)
    base = rows["independent"]
    print(f"\n{args.frames} frames, {len(base)} faces, task {args.task}, generator {args.generator}\n")
    print("| method | flicker | vs independent | hole PSNR (dB) | vs independent | s per later frame | of a full solve |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        r = rows[name]
        if not r:
            continue
        fl, ps = np.mean([x["flicker"] for x in r]), np.mean([x["hole_psnr"] for x in r])
        cost = np.mean([x["frame_seconds"] for x in r])
        full = np.mean([x["frame_seconds"] for x in base])
        print(f"| {name} | {fl:.2f} | {np.mean([b['flicker'] for b in base]) / fl:.2f}x less | {ps:.2f} | "
              f"{ps - np.mean([b['hole_psnr'] for b in base]):+.2f} | {cost:.2f} | {cost / full:.0%} |")
    if args.out is not None:
        write_json({"frames": args.frames, "task": args.task, "generator": args.generator, "rows": rows}, args.out)
