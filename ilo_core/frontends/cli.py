"""Command-line interface:

    python -m ilo_core solve --image IMG --task TASK --out OUT.png ...
    python -m ilo_core convert CHECKPOINT OUT.safetensors
    python -m ilo_core download NAME | --list
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

import torch
from PIL import Image

from ilo_core.accelerate import set_up_process, use_reference
from ilo_core.atomic import write_json
from ilo_core.checkpoints import load_generator
from ilo_core.checkpoints.download import KNOWN, download
from ilo_core.checkpoints.loading import convert_checkpoint
from ilo_core.engine.config import SOLVER_METHODS
from ilo_core.engine.methods import Solve
from ilo_core.engine.presets import default_config
from ilo_core.engine.spread import SPREAD_STARTS, restart_spread, spread_heatmap, spread_summary
from ilo_core.frontends import sequence_cli
from ilo_core.frontends.export import FrameRecorder
from ilo_core.photo.alignment import ALIGNMENTS, from_aligned
from ilo_core.photo.framing import answer_in_image
from ilo_core.photo.images import (ImageError, image_format, image_size, load_image, load_mask, pil_to_tensor,
                                   save_image_atomic, tensor_to_uint8)
from ilo_core.photo.intake import PhotoTask, take_photo
from ilo_core.physics.operators import TASKS
from ilo_core.physics.problems import evaluate, from_observation, simulate


def _steps(text: str) -> list[int]:
    try:
        steps = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--steps must be comma-separated integers, got {text!r}") from None
    if not steps or any(s < 1 for s in steps):
        raise argparse.ArgumentTypeError(f"--steps needs positive integers, got {text!r}")
    return steps


def _checked(text: str, convert, valid, expected: str):
    """`convert(text)` when it parses and is `valid`, else argparse's error "expected ..., got TEXT"."""
    try:
        value = convert(text)
    except ValueError:
        value = None
    if value is None or not valid(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
    return value


def _fraction(text: str) -> float:
    """A fraction in (0, 1] (one unit only: 0.1 is 10 %)."""
    return _checked(text, float, lambda v: 0 < v <= 1, "a fraction in (0, 1] (0.1 means 10 %)")


def _whole(text: str) -> int:
    """A positive whole number."""
    return _checked(text, int, lambda v: v >= 1, "a positive whole number")


OUTPUT_SUFFIXES = {"gif": (".gif",), "report": (".json",), "save_state": (".safetensors",)}


def check_outputs(args: argparse.Namespace) -> None:
    """Every output path's format, folder and writability, before any work starts (ValueError)."""
    for path in (args.out, args.crop_out, args.repaired, args.spread):
        if path is not None:
            image_format(path)
    for name, suffixes in OUTPUT_SUFFIXES.items():
        path = getattr(args, name)
        if path is not None and path.suffix.lower() not in suffixes:
            raise ValueError(f"--{name.replace('_', '-')} {path}: the file name must end in {' or '.join(suffixes)}")
    paths = [p for p in (args.out, args.gif, args.report, args.save_state, args.crop_out, args.repaired,
                         args.spread) if p is not None]
    inputs = {p.resolve() for p in (args.image, args.observation, args.mask) if p is not None}
    for path in paths:
        folder = path.resolve().parent
        if not folder.is_dir():
            raise ValueError(f"output folder does not exist: {path.parent}")
        if path.is_dir():
            raise ValueError(f"{path} is a folder, not a file name")
        if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise ValueError(f"cannot write {path}: permission denied")
        if path.resolve() in inputs:
            raise ValueError(f"{path} is also an input: choose another output name")
    if len({p.resolve() for p in paths}) < len(paths):
        raise ValueError("two outputs have the same file name")


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one `error:` line (exit 2), without the usage block."""

    def error(self, message: str):
        self.exit(2, f"error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m ilo_core", description="ILO Studio engine")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("solve", help="reconstruct an image with ILO or a CSGM baseline")
    s.add_argument("--image", type=Path, help="the clean image (the observation is synthesized from it); a folder "
                                              "of photos, each repaired into the folder --out; or a clip (video, "
                                              "animated GIF / WebP, a folder of frames with --video)")
    s.add_argument("--observation", type=Path, help="an already degraded image instead of --image")
    s.add_argument("--task", required=True, choices=TASKS)
    s.add_argument("--mask", type=Path, help="inpainting mask, white = missing pixels")
    s.add_argument("--observed", type=_fraction, default=0.1, help="random-inpaint: observed fraction")
    s.add_argument("--factor", type=int, default=4, help="super-resolution factor")
    s.add_argument("--sigma", type=float, default=25.0, help="denoise: noise std in 0-255 units")
    s.add_argument("--measurements", type=_fraction, default=0.1, help="compressed sensing: fraction m/n")
    s.add_argument("--method", choices=SOLVER_METHODS, default="ilo")
    s.add_argument("--generator", default="default",
                   help="'default', a downloaded name, or a StyleGAN-2 checkpoint (.pt, .pkl, .safetensors)")
    s.add_argument("--steps", type=_steps, help="steps per round, e.g. 50,50,50,50")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--detail", type=float, default=None, metavar="SIGMA",
                   help="inpainting with several starts: put one start's fine detail (finer than SIGMA px) back "
                        "into the averaged hole; sharper, a little further from the truth (0 = the plain mean; "
                        "default: the generator's own, 0.7 on a painted hole with the embedded DCGAN)")
    s.add_argument("--device", default="auto", help="auto, cpu or cuda")
    s.add_argument("--reference", action="store_true", help="the plain models, without the speed paths (ILO_REFERENCE=1)")
    s.add_argument("--out", type=Path, required=True, help="result PNG")
    s.add_argument("--gif", type=Path, help="GIF of the progression")
    s.add_argument("--report", type=Path, help="JSON report")
    s.add_argument("--save-state", type=Path, help="the solver state (.safetensors) to re-render later")
    s.add_argument("--align", choices=ALIGNMENTS, default=None,
                   help="how --image is cut to the generator's square: landmarks (dlib's landmarks put the face "
                        "where the generator's faces sit), box (face detector) or center; each falls back to "
                        "the next when no face is found. Default: landmarks, or center (as it is) for an image "
                        "already the generator's size, whose painted hole (--task inpaint --mask) is solved in "
                        "the generator's frame where its face sits otherwise and answered in its own pixels")
    s.add_argument("--face", type=int, default=0,
                   help="in a photo of several faces, which one to repair with --align landmarks: 0 (the "
                        "default) is the largest, 1 the next, ...; a painted hole (--mask) picks the face under it")
    s.add_argument("--crop-out", type=Path, help="write the aligned crop given to the generator (PNG)")
    s.add_argument("--repaired", type=Path, help="write the photo repaired at its own size (PNG)")
    s.add_argument("--spread", type=Path, help="write the per-pixel spread of the solve's starts as a heat map "
                                               "(PNG): where it is guessing (a solve of one start also solves from "
                                               f"{SPREAD_STARTS} random starts as one batch)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    sequence_cli.add_arguments(s, _fraction, _whole)
    c = sub.add_parser("convert", help="any StyleGAN-2 checkpoint -> one .safetensors that loads faster")
    c.add_argument("source", type=Path, help="rosinality .pt, NVlabs .pkl or a converted .safetensors")
    c.add_argument("target", type=Path, help="OUT.safetensors")
    d = sub.add_parser("download", help="fetch an official checkpoint by name into the cache")
    d.add_argument("name", nargs="?", help=f"one of: {', '.join(KNOWN)}")
    d.add_argument("--list", action="store_true", help="list the names and what they are")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run_convert(args: argparse.Namespace) -> int:
    folder = args.target.resolve().parent
    if not folder.is_dir():  # said before the seconds of loading, not after
        raise ValueError(f"output folder does not exist: {args.target.parent}")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"cannot write {args.target}: permission denied")
    meta = convert_checkpoint(args.source, args.target)
    config = json.loads(meta["config"])
    print(f"{args.source.name} ({meta['source_format']}, {config['size']} px) -> {args.target}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    if args.list or not args.name:
        for spec in KNOWN.values():
            print(f"{spec.name:16s} {spec.resolution:5d} px  {spec.about}")
        return 0
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(unit="B", unit_scale=True, file=sys.stderr, desc=args.name)

    def progress(done: int, total: int | None) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        path = download(args.name, progress=progress if bar is not None else None,
                        on_wait=lambda message: print(message, file=sys.stderr))
    finally:
        if bar is not None:
            bar.close()
    print(f"{args.name} -> {path}  (use it with --generator {args.name})")
    return 0


def run_solve(args: argparse.Namespace) -> dict:
    if (args.image is None) == (args.observation is None):
        raise ValueError("give exactly one of --image (clean) or --observation (degraded)")
    if args.image is None and (args.repaired is not None or args.crop_out is not None or args.align is not None):
        raise ValueError("--align, --crop-out and --repaired need --image (the photo)")
    check_outputs(args)
    if args.task == "inpaint" and args.mask is None:
        raise ValueError("inpainting needs a mask (white = missing pixels): give --mask")
    photo = args.image if args.image is not None else args.observation
    photo_size = image_size(photo)
    if args.mask is not None:
        image_size(args.mask)
    generator = load_generator(args.generator, args.device)
    size, device = generator.resolution, generator.device
    # the default: an image already the generator's size is taken as cut (a benchmark crop), else landmarks
    how = args.align or ("center" if photo_size == (size, size) else "landmarks")
    taken, mask, reframed = None, None, False
    params = dict(observed=args.observed, factor=args.factor, sigma=args.sigma, measurements=args.measurements)
    if args.image is not None:
        # one intake with the page (`ilo_core.photo.intake`); a cut face framed otherwise than the
        # generator's gets its hole solved in the generator's frame
        taken = take_photo(args.image, size, how, generator.face_frame, mask_file=args.mask, face=args.face,
                           reframe_cut=args.align is None and args.task == "inpaint")
        reframed = taken.reframed
        if reframed:
            print(f"solving the hole in the generator's frame ({taken.how}); "
                  "--align center solves the image as cut", file=sys.stderr)
        elif taken.alignment.method != how:
            print(f"warning: no face found for --align {how}; used {taken.alignment.method}", file=sys.stderr)
        problem = taken.pose(PhotoTask(args.task, seed=args.seed, **params), device)
    else:
        mask = load_mask(args.mask, size, photo_size) if args.mask is not None else None
        observed = load_image(args.observation, size if args.task != "super-resolution" else size // args.factor)
        problem = from_observation(args.task, observed.to(device), size, mask=mask, **params)
    detail = {} if args.detail is None else {"fill_detail": args.detail}
    config = default_config(generator, args.task, args.method, observed=args.observed, steps=args.steps,
                            seed=args.seed, **detail)
    solver = Solve(generator, problem.operator, problem.observation, config)
    scored, in_image = problem, (lambda images: images)
    if reframed:  # answers are shown, saved and scored in the image's own pixels
        scored = simulate("inpaint", pil_to_tensor(Image.fromarray(taken.original)).to(device), seed=args.seed,
                          mask=torch.from_numpy(taken.painted))
        in_image = partial(answer_in_image, alignment=taken.alignment, observation=scored.observation,
                           keep=scored.operator.keep)
    events, total = solver.run(), solver.total_steps
    recorder = FrameRecorder()
    started = time.perf_counter()
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=total, file=sys.stderr, unit="step", desc=args.method)
    try:
        for event in events:
            recorder.add_progress(event, view=in_image)
            if event.message:
                print(f"warning: {event.message}", file=sys.stderr)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(layer=event.split, mse=f"{event.losses['measurement_mse']:.4f}")
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - started
    best = solver.best[0]
    if best is None:
        raise RuntimeError("the solve produced no finite result: try a smaller learning rate")
    # every output is made in memory first: a run that fails writes no file
    result = in_image(best.image.to(device))
    repaired = None
    if args.repaired is not None:
        repaired = tensor_to_uint8(result) if reframed else taken.paste(tensor_to_uint8(best.image), args.task)
    guessing, heatmap = {}, None
    if args.spread is not None:
        spread = solver.spread()  # the solve's own starts, else SPREAD_STARTS more as one batch
        spread = spread[0] if spread is not None else restart_spread(generator, problem, config)[1]
        if reframed:
            spread = torch.from_numpy(from_aligned(spread.cpu().numpy(), taken.alignment)).clamp(min=0)
        heatmap = Image.fromarray(spread_heatmap(spread))
        guessing.update(spread_summary(spread, scored.operator))
    save_image_atomic(result, args.out)
    if args.crop_out is not None:
        save_image_atomic(taken.photo, args.crop_out)
    if args.gif is not None:
        recorder.save_gif(args.gif, final=result)
    if args.save_state is not None:
        best.save(args.save_state)
    if repaired is not None:
        save_image_atomic(Image.fromarray(repaired), args.repaired)
    if heatmap is not None:
        save_image_atomic(heatmap, args.spread)
    if solver.choices:
        print(solver.describe_choice(0), file=sys.stderr)
        guessing["auto"] = solver.choices[0].to_dict()
    report = {"task": args.task, "method": args.method, "steps": total, "starts": config.estimate.starts, "seconds": seconds,
              "generator": args.generator, "seed": args.seed, "nan_detected": solver.nan_detected,
              "best_round": best.round_index, "alignment": None if taken is None else taken.how,
              "solved_in_generator_frame": reframed, **evaluate(result, scored), **guessing}
    if args.report is not None:
        write_json(report, args.report)
    return report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    use_reference(getattr(args, "reference", False))
    set_up_process()
    try:
        if args.command == "convert":
            return run_convert(args)
        if args.command == "download":
            return run_download(args)
        if sequence_cli.wants_sequence(args):
            sequence_cli.run_sequence(args)
            return 0
        report = run_solve(args)
    except (ValueError, ImageError, RuntimeError, OSError) as err:
        text = str(err).strip()
        print(f"error: {text.splitlines()[0] if text else type(err).__name__}", file=sys.stderr)  # one line
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    psnr = report.get("psnr")
    print(f"{args.method} {args.task}: measurement MSE {report['measurement_mse']:.5f}"
          + (f", PSNR {psnr:.2f} dB, LPIPS {report['lpips']:.3f}" if psnr is not None else "")
          + f", {report['seconds']:.1f} s -> {args.out}")
    return 0
