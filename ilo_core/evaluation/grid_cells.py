"""The evaluation grid as cells: one cell is one setting (task at a level) x one seed x one
method x one group of images (all of them unless `--images-per-cell`), a pure function of its
spec; `results.json` is rebuilt from the cells' records in the grid's order, so it is the same
whatever ran the cells, in whatever order, over however many runs.

The spec names everything the numbers depend on: the code version, the generator's weights
identity, kind and resolution, the speed-path switch, the images (name, kind and a hash of
their pixels), the task, level and its parameters, the method, seed, steps per layer, the
experiment, the device type and the threads (a float32 matrix product's sums depend on them).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ilo_core.cluster import Cell, RecordStore, WorkerContext, code_version
from ilo_core.cluster.resources import cell_resources
from ilo_core.cluster.shipping import generator_spec
from ilo_core.evaluation.grid_definition import EvalImage, Setting, applicable, inpainting_mask, run_setting
from ilo_core.generators.base import SplitGenerator
from ilo_core.perceptual.distance import PerceptualDistance
from ilo_core.photo.images import tensor_to_pil

SNA_SETTING = Setting("denoise", "sigma 30", 30.0, {"sigma": 30.0})


@dataclass(frozen=True)
class GridPlan:
    """What the grid is run with (everything but the settings and images)."""

    methods: tuple[str, ...]
    steps_per_layer: int
    seeds: tuple[int, ...]
    sna_ablation: bool
    images_per_cell: int | None = None   # None: every image in one cell (one batch)
    cpus: int = 1                        # a cell's threads (in-process default: all of this machine's)
    gpus: bool = False                   # cells on GPUs (a share each)
    gpu_share: float | None = None       # override of `cluster.resources.gpu_share`
    reference: bool = False


def pixels_hash(image: Tensor) -> str:
    t = image.detach().cpu().contiguous().float()
    return hashlib.sha256(t.numpy().tobytes()).hexdigest()[:16]


def setting_spec(setting: Setting) -> dict[str, Any]:
    """A setting as JSON (an inpainting mask by its shape's name: `inpainting_mask` rebuilds it)."""
    params = {k: (setting.level if k == "mask" else v) for k, v in setting.params.items()}
    return {"task": setting.task, "level": setting.level, "x": setting.x, "params": params}


def setting_of(spec: dict[str, Any], resolution: int) -> Setting:
    params = dict(spec["params"])
    if "mask" in params:
        params["mask"] = inpainting_mask(params["mask"], resolution)
    return Setting(spec["task"], spec["level"], spec["x"], params)


def grid_cells(generator: SplitGenerator, settings: list[Setting], images: list[EvalImage], plan: GridPlan) -> list[Cell]:
    """The grid's cells in the report's order (settings, then seeds, then methods, then image
    groups; the SNA ablation last)."""
    per = plan.images_per_cell or len(images)
    named = [{"name": im.name, "kind": im.kind, "pixels": pixels_hash(im.image)} for im in images]
    groups = [named[i:i + per] for i in range(0, len(named), per)]
    device = "cuda" if plan.gpus else "cpu"
    base = {"job": "evaluation", "code": code_version(), "steps_per_layer": plan.steps_per_layer, "device": device,
            "threads": plan.cpus,
            "generator": generator_spec(generator, plan.reference)}
    jobs = [(s, seed, "grid", None, "", m) for s in settings for seed in plan.seeds for m in plan.methods]
    if plan.sna_ablation:
        jobs += [(SNA_SETTING, seed, "sna-ablation", sna, "+sna" if sna else "", m)
                 for sna in (False, True) for seed in plan.seeds for m in ("csgm-mse", "ilo")]
    cells = []
    for setting, seed, experiment, sna, suffix, method in jobs:
        if not applicable(method, setting.task):
            continue
        for g, group in enumerate(groups):
            spec = {**base, "setting": setting_spec(setting), "seed": seed, "method": method, "experiment": experiment,
                    "sna": sna, "suffix": suffix,
                    "images": group,
                    "sheet": experiment == "grid" and seed == plan.seeds[0] and g == 0}
            label = f"{experiment} {setting.task} {setting.level} seed {seed} {method}{suffix}" + \
                    (f" images {g + 1}/{len(groups)}" if len(groups) > 1 else "")
            cells.append(Cell(spec, label, cell_resources(generator.resolution, len(group), plan.gpus, plan.gpu_share,
                                                                  plan.cpus)))
    return cells


def evaluate_cell(spec: dict[str, Any], payload: Any, shared: dict[str, Tensor], context: WorkerContext) -> dict:
    """One cell: its records (one per image) and, for the contact sheet's cells, the first image's
    clean, observed and reconstructed PNGs. `shared`: image name -> clean [1, 3, R, R] in [-1, 1]."""
    generator = context.generator()
    images = []
    for item in spec["images"]:
        image = shared[item["name"]]
        if pixels_hash(image) != item["pixels"]:
            raise ValueError(f"image {item['name']} is not the one the cell names")
        images.append(EvalImage(item["name"], item["kind"], image.to(generator.device)))
    lpips = context.memo("lpips-alex", lambda: PerceptualDistance("alex", size=None, device=generator.device))
    setting = setting_of(spec["setting"], generator.resolution)
    records, results, problem = run_setting(generator, setting, images, [spec["method"]], spec["steps_per_layer"],
                                            spec["seed"], lpips, experiment=spec["experiment"], sna=spec["sna"],
                                            label_suffix=spec["suffix"])
    files = {}
    if spec["sheet"]:
        key = f"{setting.task}_{setting.level.replace(' ', '')}"
        pictures = {"clean": problem.clean, "observation": problem.observation_image(), **results}
        for name, image in pictures.items():
            if torch.isfinite(image[:1]).all():
                files[f"images/{key}__{name}.png"] = png_bytes(image[:1])
    return {"data": {"records": records}, "files": files}


def png_bytes(image: Tensor) -> bytes:
    """A [1, 3, R, R] image in [-1, 1] as PNG bytes."""
    buffer = io.BytesIO()
    tensor_to_pil(image.detach().cpu()).save(buffer, format="PNG")
    return buffer.getvalue()


def merged(cells: list[Cell], store: RecordStore, meta: dict) -> dict:
    """results.json's content from the records: the per-image records of the done cells in the
    grid's order (each with its cell's key), and the failed cells with their reasons."""
    records, failed, missing = [], [], 0
    for cell in cells:
        record = store.load(cell.key)
        if record is None:
            missing += 1
        elif record["status"] == "done":
            records += [{**r, "cell": cell.key} for r in record["data"]["records"]]
        else:
            failed.append({"cell": cell.key, "label": record["label"], "reason": record["reason"]})
    cells_meta = {"total": len(cells), "done": len(cells) - len(failed) - missing, "failed": len(failed), "missing": missing}
    return {"meta": {**meta, "cells": cells_meta}, "records": records, "failed": failed}
