"""The evaluation grid's definition: its settings (the paper's tasks and levels), its images,
its methods and how one setting is solved for a batch of images (`run_setting`).
`ilo_core.evaluation.evaluate` runs the grid; `ilo_core.evaluation.grid_cells` cuts it into cells."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from ilo_core.engine.config import SolverConfig
from ilo_core.engine.config import SOLVER_METHODS
from ilo_core.engine.methods import solve
from ilo_core.engine.presets import default_config, default_steps
from ilo_core.generators.base import SplitGenerator
from ilo_core.perceptual.distance import PerceptualDistance
from ilo_core.photo.alignment import align, aligned_crop
from ilo_core.photo.facecrop import face_crop
from ilo_core.photo.images import ImageError, open_image, pil_to_tensor
from ilo_core.physics.problems import Problem, evaluate_batch, simulate

ROOT = Path(__file__).resolve().parents[2]
FACES_DIR = ROOT / "assets" / "faces"
HELD_OUT_SEED = 900_000   # generator samples for evaluation: seeds 900000, 900001, ... (never used elsewhere)
CLASSICAL_INPAINTING = ("telea", "navier-stokes")  # OpenCV's cv2.inpaint: the baseline a fill must beat
# the solver's methods (CSGM variants first, as the report's columns), ILO without its balls, ILO with the
# state's sign free (`relu_range` off: the ablation of that default), the classical baselines
EVALUATION_METHODS = (*(m for m in SOLVER_METHODS if m.startswith("csgm")), "ilo", "ilo-auto", "ilo-noproj", "ilo-signed", "bm3d",
           *CLASSICAL_INPAINTING)
DEFAULT_METHODS = tuple(m for m in EVALUATION_METHODS if m != "ilo-signed")  # what a plain run compares
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
CROPS = ("box", "landmarks")  # how the photos (--images, else the example faces) are cut (evaluation_images' align_how)


@dataclass(frozen=True)
class Setting:
    """One task at one measurement level."""

    task: str                     # operator task name (ilo_core.physics.operators.TASKS)
    level: str                    # label: "10%", "sigma 25", "x4", "box", ...
    x: float                      # numeric level for plots (%, sigma, factor; 0 for masks)
    params: dict = field(default_factory=dict, hash=False)  # build_operator parameters


@dataclass
class EvalImage:
    """A clean evaluation image [1, 3, R, R] in [-1, 1]."""

    name: str
    kind: str                     # "face" (real photo), "sample" (held-out generator sample) or "user"
    image: Tensor


def grid(resolution: int, quick: bool = False) -> list[Setting]:
    """The paper's tasks and levels (section 4.3), or a small subset for `--quick`."""
    settings: list[Setting] = []
    for p in ([0.10] if quick else [0.01, 0.05, 0.10, 0.25, 0.50]):
        settings.append(Setting("random-inpaint", f"{p:.0%}", 100 * p, {"observed": p}))
    for shape in (["box"] if quick else ["box", "eyes", "strokes", "half"]):
        settings.append(Setting("inpaint", shape, 0.0, {"mask": inpainting_mask(shape, resolution)}))
    for sigma in ([25] if quick else [5, 15, 25, 50, 100]):
        settings.append(Setting("denoise", f"sigma {sigma}", float(sigma), {"sigma": float(sigma)}))
    factors = [4] if quick else [2, 4, 8] + ([16, 32] if resolution >= 512 else [])
    for f in factors:
        if resolution % f == 0:
            settings.append(Setting("super-resolution", f"x{f}", float(f), {"factor": f}))
    for m in ([0.10] if quick else [0.01, 0.05, 0.10, 0.25]):
        settings.append(Setting("compressed-sensing", f"{m:.0%}", 100 * m, {"measurements": m}))
    return settings


def inpainting_mask(shape: str, size: int, seed: int = 7) -> Tensor:
    """[size, size] bool, True = missing: "box" covers mouth and chin; "eyes" a box over both
    eyes (11.7 % of the image); "strokes" are three painted brush strokes (fixed seed) like a
    person paints in the app; "half" the right half of the face."""
    boxes = {"box": (0.55, 0.85, 0.25, 0.75), "eyes": (0.30, 0.48, 0.18, 0.83), "half": (0.0, 1.0, 0.5, 1.0)}
    if shape in boxes:
        top, bottom, left, right = boxes[shape]
        mask = torch.zeros(size, size, dtype=torch.bool)
        mask[int(top * size):int(bottom * size), int(left * size):int(right * size)] = True
        return mask
    if shape == "strokes":
        canvas = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(canvas)
        rng = np.random.default_rng(seed)
        for _ in range(3):
            points = [tuple(float(v) for v in rng.uniform(0.15, 0.85, 2) * size) for _ in range(3)]
            draw.line(points, fill=255, width=max(2, size // 10), joint="curve")
        return torch.from_numpy(np.array(canvas) > 127)
    raise ValueError(f"unknown mask shape {shape!r}")


def applicable(method: str, task: str) -> bool:
    """BM3D only denoises; compressed sensing has no image view for LPIPS."""
    if method == "bm3d":
        return task == "denoise" and bm3d_available()
    if method in CLASSICAL_INPAINTING:
        return task in ("inpaint", "random-inpaint")
    if task == "compressed-sensing":
        return method == "csgm-mse" or method.startswith("ilo")  # ILO and its variants (see method_config)
    return True


def bm3d_available() -> bool:
    try:
        import bm3d  # noqa: F401
    except ImportError:
        return False
    return True


def method_config(generator: SplitGenerator, setting: Setting, method: str, steps_per_layer: int,
                  sna: bool | None = None, seed: int = 0) -> SolverConfig:
    """The project's default config for a method; "ilo-noproj" is ILO without the l1 balls
    (and without `relu_range`), "ilo-signed" ILO without `relu_range` (the state's sign free).
    `seed` seeds the solver's starting point (the evaluation's --seeds vary it with the observation)."""
    base = "ilo-auto" if method == "ilo-auto" else "ilo" if method.startswith("ilo") else method
    overrides: dict = {"preview_every": 1_000_000, "seed": seed}
    if method == "ilo-noproj":  # no projection at all: neither the l1 balls nor the ReLU range
        overrides["l1_projection"] = False
    if method in ("ilo-noproj", "ilo-signed"):
        overrides["relu_range"] = False
    if sna is not None:
        overrides["sna"] = sna
    return default_config(generator, setting.task, base, observed=setting.params.get("observed"),
                          steps=default_steps(generator, steps_per_layer), **overrides)


def bm3d_denoise(observation: Tensor, sigma255: float) -> Tensor:
    """BM3D (the PyPI `bm3d` package) on each noisy image [B, 3, R, R] in [-1, 1]."""
    import bm3d

    out = []
    for y in observation.detach().cpu():
        y01 = ((y.permute(1, 2, 0).numpy() + 1) / 2).astype(np.float64)
        z = bm3d.bm3d_rgb(y01, sigma255 / 255.0)
        out.append(torch.from_numpy(np.clip(z, 0, 1)).permute(2, 0, 1).float() * 2 - 1)
    return torch.stack(out).to(observation.device)


def classical_inpaint(problem: Problem, method: str, radius: int = 3) -> Tensor:
    """OpenCV's Telea (2004) or Navier-Stokes inpainting of each observation -> [B, 3, R, R] in [-1, 1]."""
    import cv2

    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    missing = (~problem.operator.keep[0, 0]).cpu().numpy().astype(np.uint8) * 255
    out = []
    for y in problem.observation.detach().cpu():
        image = ((y.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        filled = cv2.inpaint(np.ascontiguousarray(image), missing, radius, flag)
        out.append(torch.from_numpy(filled).permute(2, 0, 1).float() / 127.5 - 1)
    return torch.stack(out).to(problem.observation.device)


def evaluation_images(generator: SplitGenerator, images_dir: str | Path | None, samples: int,
                      faces: int | None = None, align_how: str = "landmarks") -> list[EvalImage]:
    """The user's images (face-cropped), else the faces in assets/, then held-out generator samples.

    align_how: "landmarks" (the default), the crop the page and CLI give a photo (dlib's
    landmarks in the generator's `face_frame`; falling back to box, then centre), so the
    evaluation measures what a person gets; or "box", the face detector's box enlarged 1.5x
    (the evaluation's earlier crop, as the findings before it were measured)."""
    if align_how not in CROPS:
        raise ValueError(f"unknown evaluation crop {align_how!r}; choose {' or '.join(CROPS)}")
    size = generator.resolution
    images: list[EvalImage] = []
    if images_dir is not None:
        folder = Path(images_dir)
        if not folder.is_dir():
            raise ValueError(f"--images: {folder} is not a folder")
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise ValueError(f"--images: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
        kind = "user"
    else:
        paths, kind = sorted(FACES_DIR.glob("*.png")), "face"
    for path in paths[:faces]:
        try:
            photo = open_image(path)
        except ImageError as err:
            raise ValueError(f"{path.name}: {err}") from None
        if align_how == "box":
            crop, _, _ = face_crop(photo, size)
        else:
            crop = aligned_crop(photo, align(photo, "landmarks", generator.face_frame), size)
        images.append(EvalImage(path.stem, kind, pil_to_tensor(crop).to(generator.device)))
    with torch.no_grad():
        for i in range(samples):
            rng = torch.Generator(device=generator.device).manual_seed(HELD_OUT_SEED + i)
            image = generator.render(generator.sample_variables(1, rng)).clamp(-1, 1)
            images.append(EvalImage(f"sample{HELD_OUT_SEED + i}", "sample", image))
    if not images:
        raise ValueError("no evaluation images: give --images DIR or --samples N > 0")
    return images


def run_setting(generator: SplitGenerator, setting: Setting, images: list[EvalImage], methods: list[str],
                steps_per_layer: int, seed: int, lpips: PerceptualDistance, *, experiment: str = "grid",
                sna: bool | None = None, label_suffix: str = "") -> tuple[list[dict], dict[str, Tensor], Problem]:
    """Solve one setting for all images at once (a batch); one record per image and method.

    Returns the records, each method's reconstructions [B, 3, R, R] and the problem.
    """
    clean = torch.cat([im.image for im in images])
    problem = simulate(setting.task, clean, seed=seed, **setting.params)
    records, results = [], {}
    for method in methods:
        if not applicable(method, setting.task):
            continue
        t0, chosen, starts = time.perf_counter(), [], 1
        if method == "bm3d":
            result, steps = bm3d_denoise(problem.observation, setting.params["sigma"]), 0
        elif method in CLASSICAL_INPAINTING:
            result, steps = classical_inpaint(problem, method), 0
        else:
            config = method_config(generator, setting, method, steps_per_layer, sna, seed)
            job = solve(generator, problem.operator, problem.observation, config)
            result, steps, starts, chosen = job.images(), job.work_steps, config.estimate.starts, job.choices
        seconds = (time.perf_counter() - t0) / len(images)
        results[method + label_suffix] = result.cpu()
        chosen = chosen or [None] * len(images)
        for image, metrics, choice in zip(images, evaluate_batch(result, problem, lpips), chosen):
            metrics = {**metrics, "starts": starts}
            if choice is not None:
                metrics = {**metrics, "auto_radius_scale": choice.radius_scale, "auto_rounds": choice.rounds}
            records.append({"experiment": experiment, "image": image.name, "image_kind": image.kind,
                            "task": setting.task, "level": setting.level, "x": setting.x,
                            "method": method + label_suffix, "seed": seed, "steps": steps,
                            "seconds": round(seconds, 3), "batch": len(images), **metrics})
    return records, results, problem
