"""The CLI's folders and clips: `python -m ilo_core solve --image DIR|CLIP --out DIR|CLIP ...`.

`--image` a folder of photos: each repaired at its own size into `--out` (a folder), with a
record beside it (`ilo_core.sequences.folder_repair`). `--image` a video, an animated GIF / WebP,
or a folder of frames with `--video`: one clip, the key frame solved in full and the others
warm-started (`ilo_core.sequences.clip_repair`), written to `--out` (a video file or a folder
of PNG frames).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from ilo_core.atomic import write_json
from ilo_core.checkpoints import load_generator
from ilo_core.engine.warm import WarmStart
from ilo_core.frontends.export import FrameRecorder
from ilo_core.photo.images import read_mask
from ilo_core.photo.intake import PhotoTask
from ilo_core.sequences.clip_repair import ClipRepair, ClipRequest
from ilo_core.sequences.clips import ClipWriter, is_clip, probe_clip
from ilo_core.sequences.folder_repair import FolderRepair, FolderSettings, list_photos, match_masks


def add_arguments(s: argparse.ArgumentParser, fraction, whole) -> None:
    """The solve command's flags for folders and clips."""
    s.add_argument("--video", action="store_true", help="read --image (a folder) as the numbered frames of one clip")
    s.add_argument("--fps", type=float, default=None, help="frame rate of a folder of frames (default 25)")
    s.add_argument("--key-frame", type=int, default=0,
                   help="clip: the frame the mask is painted on and solved in full (default 0, the first)")
    s.add_argument("--independent", action="store_true",
                   help="clip: solve every frame on its own (flickers; the warm start's baseline)")
    s.add_argument("--warm-steps", type=whole, default=None, help="clip: steps of each re-run round of a later frame")
    s.add_argument("--warm-rounds", type=whole, default=None, help="clip: the key frame's last rounds a later frame re-runs")
    s.add_argument("--warm-radius", type=fraction, default=None,
                   help="clip: a later frame's l1 radii as a share of the key frame's (default 0.25)")
    s.add_argument("--warm-carry", type=float, default=None,
                   help="clip: the share of the neighbour's answer kept in a frame's answer (0 to below 1)")
    s.add_argument("--batch", type=whole, default=8, help="folder: photos solved together at most (default 8)")
    s.add_argument("--force", action="store_true",
                   help="folder: repair again the photos whose outputs exist for the same settings")
    s.add_argument("--cluster", default=None, metavar="auto|HOST:PORT",
                   help="folder or clip: run on Ray, a cell per --batch photos or per clip ('auto': this machine's "
                        "Ray instance, or a new one on 127.0.0.1; HOST:PORT: that cluster)")


def wants_sequence(args: argparse.Namespace) -> bool:
    """Whether --image names a folder of photos or a clip."""
    return args.image is not None and (args.image.is_dir() or is_clip(args.image))


def _check_out(args: argparse.Namespace, folder: bool) -> None:
    out = args.out
    if not out.resolve().parent.is_dir():
        raise ValueError(f"output folder does not exist: {out.parent}")
    if not os.access(out.resolve().parent, os.W_OK):
        raise ValueError(f"cannot write {out}: permission denied")
    if out.resolve() == args.image.resolve():
        raise ValueError(f"{out} is also the input: choose another output")
    if folder and out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file: a folder of photos is repaired into a folder")
    for name in ("gif", "save_state", "crop_out", "repaired", "spread"):
        if getattr(args, name) is not None and not (name == "gif" and not folder):
            raise ValueError(f"--{name.replace('_', '-')} is for one photo, not a {'folder' if folder else 'clip'}")


def _task(args: argparse.Namespace) -> PhotoTask:
    return PhotoTask(args.task, observed=args.observed, factor=args.factor, sigma=args.sigma,
                     measurements=args.measurements, seed=args.seed)


def run_folder(args: argparse.Namespace) -> dict:
    _check_out(args, folder=True)
    photos = list_photos(args.image)
    if not photos:
        raise ValueError(f"the folder {args.image} holds no photos (PNG, JPEG, WebP, BMP, TIFF)")
    if args.mask is not None and not args.mask.exists():
        raise ValueError(f"no such mask file or folder: {args.mask}")
    args.out.mkdir(exist_ok=True)
    generator = load_generator(args.generator, args.device)
    settings = FolderSettings(_task(args), args.method, args.align, tuple(args.steps) if args.steps else None,
                              args.seed, args.batch)
    job = FolderRepair(generator, photos, args.out, settings, match_masks(photos, args.mask), force=args.force)
    if args.cluster:
        return _folder_on_cluster(args, generator, job)
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=len(photos), file=sys.stderr, unit="photo", desc=args.method)
    started = time.perf_counter()
    try:
        for record in job.run():
            if record["status"] == "failed":
                line = f"{record['photo']}: failed: {record['reason']}"
                bar.write(line, file=sys.stderr) if bar is not None else print(line, file=sys.stderr)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=sum(r["status"] == "failed" for r in job.records))
    finally:
        if bar is not None:
            bar.close()
    return _folder_summary(args, job, started)


def _folder_summary(args: argparse.Namespace, job: FolderRepair, started: float) -> dict:
    summary = {**job.summary(), "wall_seconds": round(time.perf_counter() - started, 3)}
    if args.report is not None:
        write_json({"task": args.task, "method": args.method, "generator": args.generator, "summary": summary,
                    "records": job.records}, args.report)
    print(f"{summary['repaired']} repaired, {summary['skipped']} skipped (done before; --force repairs them "
          f"again), {summary['failed']} failed of {summary['photos']} photos -> {args.out}")
    if summary["failed"] == summary["photos"]:
        raise ValueError("every photo failed: see the lines above")
    return summary


def _runner(args: argparse.Namespace, generator):
    from ilo_core.cluster import ShippedGenerator, ray_cluster

    runner = ray_cluster(args.cluster, ShippedGenerator.of(args.generator, generator))
    gpus = runner.gpus() > 0
    print(f"Ray: {runner.slots()}", file=sys.stderr)
    return runner, gpus


def _folder_on_cluster(args: argparse.Namespace, generator, job: FolderRepair) -> dict:
    """The folder's photos to repair as cells on Ray (`sequence_cells.folder_cells`)."""
    from ilo_core.cluster import RecordStore, run_cells
    from ilo_core.cluster.progress import CellBar
    from ilo_core.frontends.sequence_cells import folder_cells, repair_photos

    started = time.perf_counter()
    planned = []
    for item in job.plan():
        if isinstance(item, dict):
            if item["status"] == "failed":
                print(f"{item['photo']}: failed: {item['reason']}", file=sys.stderr)
        else:
            planned.append(item)
    runner, gpus = _runner(args, generator)
    cells = folder_cells(job, planned, gpus)
    store = RecordStore(args.out / ".ilo-cells", files_root=args.out)
    bar = None if args.quiet else CellBar()
    for event in run_cells(cells, repair_photos, store, runner, force=True,
                           on_progress=None if bar is None else bar.update):
        if event.status == "failed":
            for item in event.cell.spec["photos"]:
                record = job.failed(Path(item["name"]), f"its cell failed: {event.record['reason']}")
                print(f"{record['photo']}: failed: {record['reason']}", file=sys.stderr)
            continue
        for record in event.record["data"]["records"]:  # "batch": the solve of its cell, named by "cell"
            record = {**record, "cell": event.cell.key}
            job.records.append(record)
            if record["status"] == "failed":
                print(f"{record['photo']}: failed: {record['reason']}", file=sys.stderr)
    if bar is not None:
        bar.close()
    return _folder_summary(args, job, started)


def _clip_on_cluster(args: argparse.Namespace, generator, info, request: ClipRequest, painted) -> dict:
    """The clip as one cell on Ray (`sequence_cells.clip_cell`): its video and GIF written here."""
    from ilo_core.atomic import write_bytes
    from ilo_core.cluster import RecordStore, run_cells
    from ilo_core.cluster.progress import CellBar
    from ilo_core.frontends.sequence_cells import clip_cell, repair_clip

    started = time.perf_counter()
    runner, gpus = _runner(args, generator)
    cell = clip_cell(args.image, args.fps, request, painted, args.out.suffix, args.gif is not None, generator, gpus)
    bar = None if args.quiet else CellBar()
    with tempfile.TemporaryDirectory(prefix="ilo-clip-records-") as records:
        events = list(run_cells([cell], repair_clip, RecordStore(records), runner, force=True,
                                on_progress=None if bar is None else bar.update))
    if bar is not None:
        bar.close()
    event = events[0]
    if event.status == "failed":
        raise ValueError(f"the clip's cell failed: {event.record['reason']}")
    write_bytes(event.files["clip"], args.out)
    if args.gif is not None:
        write_bytes(event.files["gif"], args.gif)
    report = {"task": args.task, "method": args.method, "generator": args.generator, "key_frame": args.key_frame,
              "warm": None if request.warm is None else vars(request.warm), "seconds": time.perf_counter() - started,
              "stopped": None, "worker": event.record["run"]["worker"], **event.record["data"]}
    if args.report is not None:
        write_json(report, args.report)
    first, last = report["written"]
    print(f"{args.method} {args.task}: {last - first + 1} frames in {report['seconds']:.1f} s on "
          f"{report['worker']}, {report['audio']} -> {args.out}")
    return report


def run_clip(args: argparse.Namespace) -> dict:
    _check_out(args, folder=False)
    if args.cluster and (args.image.is_dir() or args.out.suffix.lower() not in (".mp4", ".mov", ".mkv", ".webm")):
        raise ValueError("--cluster repairs a clip file (video, GIF or WebP) into a video file (.mp4, .mov, .mkv, "
                         ".webm); a folder of frames runs in this process")
    ClipWriter(args.out, 25.0, (2, 2))  # a video file name, or a folder that holds no other files: said before any work
    if args.gif is not None and (args.gif.suffix.lower() != ".gif" or not args.gif.resolve().parent.is_dir()):
        raise ValueError(f"--gif {args.gif}: the key frame's progression is written as a .gif into an existing folder")
    info = probe_clip(args.image, args.fps)  # limits checked on the metadata, before decoding
    painted = None
    if args.task == "inpaint":
        if args.mask is None:
            raise ValueError("inpainting needs a mask painted on the key frame: give --mask")
        painted = read_mask(args.mask, (info.width, info.height))
    warm = None
    if not args.independent:
        given = {"steps": args.warm_steps, "rounds": args.warm_rounds, "radius_share": args.warm_radius,
                 "carry": args.warm_carry}
        warm = WarmStart(**{k: v for k, v in given.items() if v is not None}).validate()
    generator = load_generator(args.generator, args.device)
    request = ClipRequest(_task(args), args.method, args.key_frame, args.align or "landmarks", args.face,
                          tuple(args.steps) if args.steps else None, warm, args.seed)
    print(f"{args.image.name}: {info.describe()}", file=sys.stderr)
    if args.cluster:
        return _clip_on_cluster(args, generator, info, request, painted)
    bar = None
    started = time.perf_counter()
    stopped = None
    with tempfile.TemporaryDirectory(prefix="ilo-clip-") as work:
        job = ClipRepair(generator, info, request, painted, work)
        recorder = FrameRecorder() if args.gif is not None else None
        if recorder is not None:
            job.key_progress = recorder.add_progress
        try:
            for progress in job.run():
                if args.quiet:
                    continue
                if bar is None or bar.desc != progress.stage:
                    if bar is not None:
                        bar.close()
                    from tqdm import tqdm

                    bar = tqdm(total=progress.total, file=sys.stderr, unit="frame", desc=progress.stage)
                bar.n = progress.done
                if progress.frame is not None:
                    left = {} if progress.seconds_left is None else {"left": f"{progress.seconds_left:.0f}s"}
                    bar.set_postfix(frame=progress.frame, **left)
                bar.refresh()
        except KeyboardInterrupt:
            stopped = "interrupted"
        finally:
            if bar is not None:
                bar.close()
        for line in job.log:
            print(f"warning: {line}", file=sys.stderr)
        first, last, audio = job.write(args.out)
        if recorder is not None:
            recorder.save_gif(args.gif)
    seconds = time.perf_counter() - started
    report = {"task": args.task, "method": args.method, "generator": args.generator, "clip": info.describe(),
              "frames": job.frames, "written": [first, last], "key_frame": args.key_frame,
              "warm": None if warm is None else vars(warm), "seconds": seconds, "stopped": stopped,
              "frame_seconds": {str(t): round(s, 3) for t, s in sorted(job.solved.items())},
              "left_as_they_are": {str(t): why for t, why in job.failed.items()}, "log": job.log, "audio": audio}
    if args.report is not None:
        write_json(report, args.report)
    where = "" if (first, last) == (0, job.frames - 1) else \
        f" (stopped: frames {first} to {last} of {job.frames})"
    print(f"{args.method} {args.task}: {last - first + 1} frames in {seconds:.1f} s{where}, {audio} -> {args.out}")
    if stopped:
        raise KeyboardInterrupt
    return report


def run_sequence(args: argparse.Namespace) -> dict:
    """A folder of photos or a clip (`wants_sequence`)."""
    if args.observation is not None:
        raise ValueError("give --image (the folder or clip), not --observation")
    if args.image.is_dir() and not args.video:
        return run_folder(args)
    return run_clip(args)
