"""Reproduce the paper's comparisons (Figure 2, Table 1) on any generator with one command.

    python -m ilo_core.evaluation.evaluate [--generator default|NAME|PATH] [--images DIR] [--quick] --out DIR
                                           [--cluster auto|HOST:PORT] [--images-per-cell N] [--force | --resume]

Every image x task x level x method x seed becomes one record of `DIR/results.json`
(true MSE and PSNR in [0, 1] pixel units, LPIPS alex, measurement MSE, seconds, steps);
`DIR/report.md` holds the tables, Figure-2-style plots and a contact sheet
(`ilo_core.evaluation.report`). Observations are synthesized from clean images with recorded
seeds, so every number can be reproduced. All iterative methods get the same total
number of steps (ILO: `steps_per_layer` on each of four layers; CSGM: the sum). ILO's
answer for holes and random pixels is the estimate the generator's tuning declares (on the
DCGAN the mean of several starts solved as one batch: the records' "starts" and "seconds").

The grid runs as cells (`ilo_core.evaluation.grid_cells`): each finished cell's record is
written whole to `DIR/records/` as it arrives, so the same command run again (or `--resume
--out DIR`) runs only the missing cells, and `--cluster` runs them on Ray
(docs/evaluation/cluster.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ilo_core.accelerate import set_up_process, use_reference
from ilo_core.atomic import write_json
from ilo_core.checkpoints import load_generator
from ilo_core.cluster import RecordStore, ShippedGenerator, WorkerContext, in_process, ray_cluster, run_cells
from ilo_core.cluster.backends import RETRIES, Runner
from ilo_core.cluster.progress import CellBar
from ilo_core.cluster.ray_backend import RayClusterError
from ilo_core.engine.presets import FILL_TASKS, STEPS_PER_ROUND, default_estimate, default_rounds
from ilo_core.evaluation.grid_cells import GridPlan, evaluate_cell, grid_cells, merged
from ilo_core.evaluation.grid_definition import (CROPS, DEFAULT_METHODS, EVALUATION_METHODS, HELD_OUT_SEED,
                                                 EvalImage, Setting, bm3d_available, evaluation_images, grid)
from ilo_core.generators.base import SplitGenerator

MERGE_EVERY = 5.0  # seconds between rebuilds of results.json while cells arrive


def run(generator: SplitGenerator, out: Path, *, images: list[EvalImage], settings: list[Setting],
        plan: GridPlan, meta: dict, runner: Runner, force: bool = False, retries: int = RETRIES,
        log=print, on_progress=None) -> dict:
    """Run the grid's missing cells (every cell with `force`) and rebuild results.json from the
    records; returns its content, with meta["cells"] (total, done, failed, missing) and
    meta["ran"] (the cells this call ran)."""
    out.mkdir(parents=True, exist_ok=True)
    store = RecordStore(out / "records", files_root=out)
    cells = grid_cells(generator, settings, images, plan)
    shared = {im.name: im.image.detach().cpu() for im in images}
    t_start, last_merge, ran = time.perf_counter(), 0.0, 0
    for event in run_cells(cells, evaluate_cell, store, runner, shared=shared, retries=retries, force=force,
                           on_progress=on_progress):
        if event.status == "recorded":
            continue
        ran += 1
        if event.status == "failed":
            log(f"{event.cell.label}: failed: {event.record['reason']}")
        else:
            records = event.record["data"]["records"]
            mse = np.mean([r["mse"] for r in records]) if records else float("nan")
            log(f"{event.cell.label}: true MSE {mse:.4f} ({event.record['run']['seconds']:.1f} s)")
        if time.perf_counter() - last_merge > MERGE_EVERY:
            last_merge = time.perf_counter()
            write_json(merged(cells, store, {**meta, "seconds_total": round(last_merge - t_start, 1)}), out / "results.json")
    data = merged(cells, store, {**meta, "seconds_total": round(time.perf_counter() - t_start, 1), "ran": ran})
    write_json(data, out / "results.json")
    return data


def stored_arguments(out: Path) -> list[str]:
    """The arguments of the run that wrote `out/results.json` (for --resume)."""
    try:
        meta = json.loads((out / "results.json").read_text())["meta"]
        return [str(a) for a in meta["argv"]]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"--resume: {out} holds no results.json of an evaluation to resume; "
                         f"give the grid's arguments instead") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ilo_core.evaluation.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--generator", default="default", help="'default' (DigiFace DCGAN), a downloaded name or a StyleGAN-2 checkpoint")
    p.add_argument("--device", default="auto")
    p.add_argument("--reference", action="store_true", help="the plain models, without the speed paths (ILO_REFERENCE=1)")
    p.add_argument("--images", default=None, help="a folder of your own clean images (default: assets/faces)")
    p.add_argument("--align", choices=CROPS, default="landmarks",
                   help="how the photos are cut: the page's and CLI's landmark crop in the generator's "
                        "face frame (default), or the face detector's box x1.5 (the earlier default)")
    p.add_argument("--samples", type=int, default=None, help="held-out generator samples (default 6; quick 1)")
    p.add_argument("--seeds", type=int, default=1, help="observation seeds per setting (0, 1, ...)")
    p.add_argument("--steps", type=int, default=None, help="steps per layer (default 50; quick 10)")
    p.add_argument("--tasks", default=None, help="comma-separated subset of the tasks")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="comma-separated subset of " + ", ".join(EVALUATION_METHODS))
    p.add_argument("--no-sna-ablation", action="store_true")
    p.add_argument("--quick", action="store_true", help="a small grid that finishes in minutes on a CPU")
    p.add_argument("--out", required=True, help="output folder for results.json, report.md, figures and records/")
    p.add_argument("--cluster", default=None, metavar="auto|HOST:PORT",
                   help="run the cells on Ray: 'auto' joins this machine's Ray instance or starts one (127.0.0.1 "
                        "only); HOST:PORT joins that cluster (default: in this process, no Ray)")
    p.add_argument("--images-per-cell", type=int, default=None,
                   help="images solved together in one cell (default: all of them, one batch per setting)")
    p.add_argument("--cpus-per-cell", type=int, default=None,
                   help="a cell's CPUs, the threads it runs on (default: all of this machine's in process, 1 on Ray); "
                        "the numbers depend on it, so records made with another count are not reused")
    p.add_argument("--gpus-per-cell", type=float, default=None,
                   help="a cell's share of one GPU on a cluster with GPUs (default: from the resolution and batch)")
    p.add_argument("--retries", type=int, default=RETRIES, help=f"runs of a failing cell after its first (default {RETRIES})")
    p.add_argument("--force", action="store_true", help="run every cell again, even those recorded in --out")
    p.add_argument("--resume", action="store_true",
                   help="finish the grid recorded in --out with its own arguments (all but --cluster, which may be "
                        "given anew; a plain re-run of the command does the same)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.resume:
        try:
            stored = stored_arguments(Path(args.out))
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        extra = ["--cluster", args.cluster] if args.cluster else []
        argv = [a for a in stored if a != "--force"] + extra
        args = parser().parse_args(argv)
    return run_command(args, argv)


def run_command(args: argparse.Namespace, argv: list[str]) -> int:
    """The command with its parsed arguments (`argv` recorded in results.json for --resume)."""
    p = parser()
    use_reference(args.reference)
    set_up_process()
    from ilo_core.evaluation.report import write_report

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in EVALUATION_METHODS]
    if unknown or not methods:
        p.error(f"unknown method(s) {unknown}; choose from {', '.join(EVALUATION_METHODS)}")
    steps = args.steps if args.steps is not None else (10 if args.quick else STEPS_PER_ROUND)
    samples = args.samples if args.samples is not None else (1 if args.quick else 6)
    if steps < 1 or samples < 0 or args.seeds < 1 or args.retries < 0:
        p.error("--steps and --seeds must be >= 1, --samples and --retries >= 0")
    if args.images_per_cell is not None and args.images_per_cell < 1:
        p.error("--images-per-cell must be >= 1")
    if args.cpus_per_cell is not None and args.cpus_per_cell < 1:
        p.error("--cpus-per-cell must be >= 1")
    if args.gpus_per_cell is not None and not 0 < args.gpus_per_cell <= 1:
        p.error("--gpus-per-cell is a share of one GPU: above 0, at most 1")
    try:
        generator = load_generator(args.generator, args.device)
        images = evaluation_images(generator, args.images, samples, faces=1 if args.quick else None,
                                   align_how=args.align)
        if args.cluster:
            runner = ray_cluster(args.cluster, ShippedGenerator.of(args.generator, generator, args.reference))
            gpus = runner.gpus() > 0
            print(f"Ray: {runner.slots()}", file=sys.stderr)
        else:
            runner, gpus = in_process(WorkerContext(None, generator.device.type, generator)), generator.device.type == "cuda"
    except (ValueError, RayClusterError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    settings = grid(generator.resolution, args.quick)
    if args.tasks:
        wanted = {t.strip() for t in args.tasks.split(",")}
        settings = [s for s in settings if s.task in wanted]
        if not settings:
            p.error(f"--tasks {args.tasks!r} matches no task")
    if "bm3d" in methods and not bm3d_available():
        print("note: the PyPI package bm3d is not installed; BM3D is left out", file=sys.stderr)
    seeds = list(range(args.seeds))
    cpus = args.cpus_per_cell or (1 if args.cluster else torch.get_num_threads())
    plan = GridPlan(tuple(methods), steps, tuple(seeds), not args.no_sna_ablation, args.images_per_cell, cpus, gpus,
                    args.gpus_per_cell, args.reference)
    meta = {"command": "python -m ilo_core.evaluation.evaluate " + " ".join(argv), "argv": argv,
            "generator": args.generator, "generator_kind": generator.kind, "resolution": generator.resolution,
            "device": str(generator.device), "quick": args.quick, "align": args.align, "steps_per_layer": steps,
            "rounds": default_rounds(generator), "total_steps": steps * default_rounds(generator),
            "fill_starts": max(default_estimate(generator, t).starts for t in FILL_TASKS),
            "fill_rounds": default_estimate(generator, "inpaint").rounds_averaged,
            "images": [{"name": im.name, "kind": im.kind} for im in images], "seeds": seeds,
            "held_out_seed": HELD_OUT_SEED, "methods": methods, "bm3d": bm3d_available(),
            "torch": torch.__version__, "threads": cpus, "back_end": runner.name,
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    out = Path(args.out)
    bar = CellBar()
    try:
        data = run(generator, out, images=images, settings=settings, plan=plan, meta=meta, runner=runner,
                   force=args.force, retries=args.retries, log=bar.write, on_progress=bar.update)
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted: the cells finished so far are recorded in {out / 'records'}; run the same command "
              f"again (or --resume --out {out}) to finish the rest", file=sys.stderr)
        return 130
    bar.close()
    report = write_report(out, data)
    cells = data["meta"]["cells"]
    print(f"wrote {out / 'results.json'} ({len(data['records'])} records; cells: {cells['total']}, "
          f"{data['meta']['ran']} run now, {cells['total'] - data['meta']['ran'] - cells['missing']} recorded before, "
          f"{cells['failed']} failed) and {report}")
    return 1 if cells["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
