"""What the Studio page does, without any UI toolkit: read the painted photo, pose the
problem, build the config from the controls, run one or two solves with throttled
updates, and write the downloads. `app.py` only wires this to Gradio widgets."""

from __future__ import annotations

import math
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from ilo_core.config import SolverConfig
from ilo_core.defaults import default_config
from ilo_core.export import FrameRecorder
from ilo_core.facecrop import face_crop
from ilo_core.generators.base import SplitGenerator
from ilo_core.images import ImageError, open_image, pil_to_tensor, save_image_atomic, tensor_to_uint8
from ilo_core.problems import Problem, evaluate, from_observation, simulate
from ilo_core.solver import ILOSolver

METHOD_LABELS = {"ILO": "ilo", "CSGM-MSE (PULSE-style)": "csgm-mse", "CSGM-LPIPS": "csgm-lpips",
                 "CSGM-MSE+LPIPS": "csgm-mse-lpips", "Compare ILO vs CSGM-MSE": "compare"}
TASK_LABELS = {"Inpainting (paint the region)": "inpaint", "Random inpainting": "random-inpaint",
               "Super-resolution": "super-resolution", "Denoising": "denoise",
               "Compressed sensing": "compressed-sensing"}
MIN_MISSING, MAX_MISSING = 0.001, 0.98


class InputError(ValueError):
    """Bad input from the page; the message is shown to the person as is."""


@dataclass
class PhotoInput:
    """The photo cropped to the generator's square, and the painted mask (True = missing)."""

    photo: Image.Image
    missing: np.ndarray | None
    how: str


def read_editor(value: dict | None, size: int) -> PhotoInput:
    """An ImageMask value (background / layers as file paths or arrays) -> cropped photo and mask.

    The painted layers' alpha channel is the mask. The crop (face detector or centre)
    is applied to photo and mask alike, then both are resized to `size`.
    """
    if not value or value.get("background") is None:
        raise InputError("Upload a photo first (or pick one of the examples).")
    try:
        photo = open_image(value["background"])
    except ImageError as err:
        raise InputError(str(err)) from None
    alpha = np.zeros((photo.height, photo.width), dtype=bool)
    for layer in value.get("layers") or []:
        if layer is None:
            continue
        img = Image.open(layer) if isinstance(layer, (str, Path)) else Image.fromarray(np.asarray(layer))
        a = np.asarray(img.convert("RGBA"))[:, :, 3]
        if a.shape != alpha.shape:
            a = np.asarray(Image.fromarray(a).resize(photo.size, Image.NEAREST))
        alpha |= a > 0
    crop, box, how = face_crop(photo, size)
    mask = Image.fromarray(alpha.astype(np.uint8) * 255).crop(box).resize((size, size), Image.NEAREST)
    return PhotoInput(crop, np.asarray(mask) > 127, how)


def crop_preview(path: str | None, size: int) -> tuple[np.ndarray | None, str]:
    """The crop that will be used for an uploaded photo, and a one-line note."""
    if not path:
        return None, ""
    try:
        photo = open_image(path)
    except ImageError as err:
        raise InputError(str(err)) from None
    crop, box, how = face_crop(photo, size)
    return np.asarray(crop), f"{how}: {box[2] - box[0]} px square at ({box[0]}, {box[1]}), resized to {size} px"


def pose_problem(inputs: PhotoInput, task: str, degraded: bool, *, observed_pct: float, factor: int,
                 sigma: float, measurements_pct: float, seed: int, device: torch.device) -> Problem:
    """The inverse problem from the page's choices (percentages in (0, 100])."""
    size = inputs.photo.width
    for name, pct in (("observed pixels", observed_pct), ("measurements", measurements_pct)):
        if not (isinstance(pct, (int, float)) and math.isfinite(pct) and 0 < pct <= 100):
            raise InputError(f"The percentage of {name} must be in (0, 100], got {pct}.")
    params = dict(observed=observed_pct / 100, factor=int(factor), sigma=float(sigma),
                  measurements=measurements_pct / 100)
    if task == "inpaint":
        frac = float(inputs.missing.mean()) if inputs.missing is not None else 0.0
        if frac < MIN_MISSING:
            raise InputError("The mask is empty: paint the region to reconstruct with the brush.")
        if frac > MAX_MISSING:
            raise InputError("The mask covers the whole photo: leave some pixels observed.")
        params["mask"] = torch.from_numpy(inputs.missing.copy())
    image = pil_to_tensor(inputs.photo).to(device)
    try:
        if degraded:
            if task == "super-resolution":
                low = size // int(factor) if factor and size % int(factor) == 0 else 0
                if low < 1:
                    raise ValueError(f"factor {factor} does not divide the generator size {size}")
                image = pil_to_tensor(inputs.photo.resize((low, low), Image.BICUBIC)).to(device)
            return from_observation(task, image, size, **params)
        return simulate(task, image, seed=seed, **params)
    except ValueError as err:
        raise InputError(str(err)[:1].upper() + str(err)[1:] + ".") from None


def build_config(generator: SplitGenerator, task: str, method: str, *, steps: list[int],
                 radii: dict[str, list[float]], observed_pct: float, mse_weight: float, lpips_weight: float,
                 geodesic_weight: float, lr: float, seed: int, l1_projection: bool = True) -> SolverConfig:
    """A validated config from per-layer controls. Layers with 0 steps end the schedule."""
    rounds = []
    for s in steps:
        if s is None or not math.isfinite(s) or s < 0:
            raise InputError(f"Steps per layer must be whole numbers >= 0, got {steps}.")
        if int(s) == 0:
            break
        rounds.append(int(s))
    if not rounds:
        raise InputError("Give layer 0 at least one step.")
    cfg = default_config(generator, task, "ilo" if method == "compare" else method, observed=observed_pct / 100,
                         steps=rounds, seed=int(seed), lr=float(lr), geodesic_weight=float(geodesic_weight))
    if cfg.method == "ilo":
        cfg.radii = {g: [None] + [float(v) for v in values[1:len(rounds)]] for g, values in radii.items()}
        cfg.l1_projection = bool(l1_projection)
    if cfg.mse_weight > 0:
        cfg.mse_weight = float(mse_weight)
    if cfg.lpips_weight > 0 or (cfg.method == "ilo" and task != "compressed-sensing"):
        cfg.lpips_weight = float(lpips_weight)  # ILO: the slider rules (it follows the task's default)
    try:
        return cfg.validate(generator.num_layers)
    except ValueError as err:
        raise InputError(str(err)) from None


@dataclass
class Update:
    """One refresh of the page."""

    preview: np.ndarray | None = None
    status: str = ""
    curve: list[tuple[int, str, float]] = field(default_factory=list)   # (step, series, log10 value)
    final: dict | None = None   # present once: images, metrics, files


class StopFlag:
    """Set by the Stop button; checked between steps."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def set(self) -> None:
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


def run_job(generator: SplitGenerator, problem: Problem, configs: dict[str, SolverConfig], stop: StopFlag,
            out_dir: Path, min_interval: float = 0.3) -> Iterator[Update]:
    """Run one solve per config (e.g. ILO and CSGM-MSE), yielding throttled updates, then
    the final update with images, metrics and downloads. Stop keeps the best results."""
    curve: list[tuple[int, str, float]] = []
    results: dict[str, dict] = {}
    last = 0.0
    for label, cfg in configs.items():
        solver = ILOSolver(generator, problem.operator, problem.observation, cfg)
        recorder = FrameRecorder()
        started = time.perf_counter()
        run = solver.run()
        note = ""
        for event in run:
            recorder.add_progress(event)
            curve.append((event.done, f"{label} measurement", math.log10(max(event.losses["measurement_mse"], 1e-12))))
            if event.message:
                note = event.message
            now = time.perf_counter()
            if stop.is_set():
                run.close()
                note = "stopped: the best result so far is kept"
                break
            if now - last >= min_interval or event.done == event.total:
                last = now
                yield Update(
                    preview=None if event.image is None else tensor_to_uint8(event.image),
                    status=(f"**{label}** · layer {event.split} (round {event.round_index + 1}/{cfg.rounds}) · "
                            f"step {event.step + 1}/{event.round_steps} · total {event.done}/{event.total} · "
                            f"measurement MSE {event.losses['measurement_mse']:.5f} · {event.elapsed:.1f} s"),
                    curve=list(curve))
        seconds = time.perf_counter() - started
        best = solver.best[0]
        if best is None:
            raise InputError("The run produced no finite result; try a smaller learning rate.")
        stem = label.lower().replace(" ", "-").replace("+", "")
        png, gif, state = out_dir / f"{stem}_result.png", out_dir / f"{stem}_progress.gif", out_dir / f"{stem}_state.safetensors"
        save_image_atomic(best.image, png)
        recorder.save_gif(gif, final=best.image)
        best.save(state)
        results[label] = {"image": tensor_to_uint8(best.image), "metrics": evaluate(best.image.to(generator.device), problem),
                          "seconds": seconds, "steps": cfg.total_steps, "files": [str(png), str(gif), str(state)],
                          "note": note, "best_layer": best.split}
        if stop.is_set():
            break
    yield Update(status=_summary(results), curve=list(curve),
                 final={"results": results, "observation": tensor_to_uint8(problem.observation_image()),
                        "clean": None if problem.clean is None else tensor_to_uint8(problem.clean)})


def _summary(results: dict[str, dict]) -> str:
    rows = ["| method | PSNR (dB) | LPIPS | measurement MSE | steps | seconds |", "|---|---|---|---|---|---|"]
    for label, r in results.items():
        m = r["metrics"]
        psnr = "—" if m["psnr"] is None else f"{m['psnr']:.2f}"
        lp = "—" if m["lpips"] is None else f"{m['lpips']:.3f}"
        rows.append(f"| {label} | {psnr} | {lp} | {m['measurement_mse']:.5f} | {r['steps']} | {r['seconds']:.1f} |")
    notes = [f"{label}: {r['note']}" for label, r in results.items() if r["note"]]
    return "\n".join(rows + ([""] + notes if notes else []))


def new_output_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="ilo_studio_"))
