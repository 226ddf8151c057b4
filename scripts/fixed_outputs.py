"""Outputs of fixed solves, to compare two trees of the engine (issue 13: equal within 1e-6;
issue 29: bit-identical).

DCGAN: five tasks x ILO / CSGM-MSE, and ILO + LPIPS on three; ilo-auto on a painted hole and
random pixels; the spread (the solve's own starts, and extra restarts); best of 2 restarts; a
re-run from round 2 with new radii; the answers cut after each round; the photo intake of the
CLI (a painted photo, landmarks, pasted back) and of the page (an editor value, every task);
rosinality's 64 px StyleGAN-2: four tasks; LPIPS alex and vgg distances. Needs ../shared (or
ILO_SHARED). Works on trees from before and after issue 29's move into wings.

    PYTHONPATH=TREE_A python scripts/fixed_outputs.py a.pt
    PYTHONPATH=TREE_B python scripts/fixed_outputs.py b.pt
    python scripts/fixed_outputs.py --compare a.pt b.pt
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SHARED = Path(os.environ.get("ILO_SHARED", Path(__file__).resolve().parent.parent.parent / "shared"))


def find(name: str, *modules: str):
    """`name` from the first of `modules` that has it (the tree's layout before or after the move)."""
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"{name} is in none of {modules}")


def default_config(*args, **kwargs):
    return find("default_config", "ilo_core.engine.presets", "ilo_core.defaults")(*args, **kwargs)


def simulate(*args, **kwargs):
    return find("simulate", "ilo_core.physics.problems", "ilo_core.problems")(*args, **kwargs)


def Solve(*args):
    return find("Solve", "ilo_core.engine.methods", "ilo_core.methods")(*args)


def finished(job):
    for _ in job.run():
        pass
    return job


def engine_paths(dcgan, image) -> dict[str, torch.Tensor]:
    """ilo-auto, the spread, restarts, a re-run and the cut answers on the DCGAN."""
    out = {}
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[24:44, 12:52] = True
    hole = simulate("inpaint", image, seed=3, mask=mask)
    pixels = simulate("random-inpaint", image, seed=3, observed=0.1)
    for name, problem, observed in (("inpaint", hole, None), ("random-inpaint", pixels, 0.1)):
        cfg = default_config(dcgan, name, "ilo-auto", observed=observed, steps=[4, 4, 4, 4], seed=5)
        job = finished(Solve(dcgan, problem.operator, problem.observation, cfg))
        out[f"auto/{name}"] = job.images().cpu()
        out[f"auto/{name}/choice"] = torch.tensor([float(v) for v in str(job.choices[0].to_dict()).encode()])
        spread = job.spread()
        out[f"auto/{name}/spread"] = spread.cpu() if spread is not None else torch.zeros(1)
    cfg = default_config(dcgan, "inpaint", "ilo", steps=[4, 4, 4, 4], seed=7)
    job = finished(Solve(dcgan, hole.operator, hole.observation, cfg))
    out["ilo/inpaint/spread"] = job.spread().cpu()
    for r in range(4):
        out[f"ilo/inpaint/after_round_{r}"] = job.images(after_round=r).cpu()
    best = job.best[0]
    out["ilo/inpaint/best_state"] = torch.cat([v.flatten() for v in best.state.values()])
    out["ilo/inpaint/best_measurement_mse"] = torch.tensor(best.measurement_mse)
    radii = {g: [v if v is None or r < 2 else 0.5 * v for r, v in enumerate(values)] for g, values in cfg.radii.items()}
    new = default_config(dcgan, "inpaint", "ilo", steps=[4, 4, 6, 3], seed=7, radii=radii)
    for _ in job.rerun_from(2, new):
        pass
    out["ilo/inpaint/rerun_from_2"] = job.images().cpu()
    restart_spread = find("restart_spread", "ilo_core.engine.spread", "ilo_core.spread")
    sr = simulate("super-resolution", image, seed=3, factor=4)
    cfg = default_config(dcgan, "super-resolution", "ilo", steps=[3, 3, 3, 3], seed=2)
    results, spread = restart_spread(dcgan, sr, cfg, 3)
    out["spread/restarts/results"], out["spread/restarts/spread"] = results.cpu(), spread.cpu()
    config_fields = find("SolverConfig", "ilo_core.engine.config", "ilo_core.config").__dataclass_fields__
    two_runs = {"best_of": 2} if "estimate" in config_fields else {"restarts": 2}
    cfg = default_config(dcgan, "denoise", "ilo", steps=[3, 3, 3, 3], seed=4, **two_runs)
    noisy = simulate("denoise", image, seed=3, sigma=25)
    best_of_2 = finished(Solve(dcgan, noisy.operator, noisy.observation, cfg))
    out["ilo/denoise/best_of_2_restarts"] = best_of_2.images().cpu()
    return out


def a_photo() -> tuple[np.ndarray, np.ndarray]:
    """A 420 x 360 photo with the astronaut's face, and a painted box over the eyes [H, W] bool."""
    face = np.asarray(Image.open(SHARED / "faces" / "astronaut_face.png").convert("RGB"))
    photo = np.full((360, 420, 3), 118, np.uint8)
    photo[60:316, 110:366] = face
    painted = np.zeros(photo.shape[:2], bool)
    painted[140:175, 150:330] = True
    return photo, painted


def cli_intake(folder: Path) -> dict[str, torch.Tensor]:
    """The CLI on a painted photo (landmarks, the hole framed, pasted back), as a subprocess."""
    photo, painted = a_photo()
    Image.fromarray(photo).save(folder / "photo.png")
    Image.fromarray(painted.astype(np.uint8) * 255).save(folder / "mask.png")
    out = {}
    for task, extra in (("inpaint", ["--mask", str(folder / "mask.png")]), ("super-resolution", ["--factor", "4"])):
        files = [folder / f"{task}_{n}.png" for n in ("out", "crop", "repaired")]
        command = [sys.executable, "-m", "ilo_core", "solve", "--task", task, "--image", str(folder / "photo.png"), *extra,
                   "--steps", "3,3,3,3", "--seed", "2", "--quiet", "--out", str(files[0]),
                   "--crop-out", str(files[1]), "--repaired", str(files[2])]
        done = subprocess.run(command, env={**os.environ, "PYTHONPATH": os.getcwd()}, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"the CLI failed: {done.stderr.strip()}")
        for name, f in zip(("out", "crop", "repaired"), files):
            out[f"cli/{task}/{name}"] = torch.from_numpy(np.asarray(Image.open(f)).copy())
    return out


def page_intake(dcgan) -> dict[str, torch.Tensor]:
    """The page's intake of an editor value (background + painted layer) for every task, and a solve."""
    photo, painted = a_photo()
    layer = np.zeros((*painted.shape, 4), np.uint8)
    layer[painted] = 255
    value = {"background": Image.fromarray(photo), "layers": [Image.fromarray(layer)]}
    out = {}
    settings = dict(observed_pct=10, factor=4, sigma=25, measurements_pct=10, seed=3)
    for task in ("inpaint", "random-inpaint", "super-resolution", "denoise", "compressed-sensing"):
        for degraded in (False, True):
            if degraded and task in ("inpaint", "random-inpaint", "compressed-sensing"):
                continue
            problem, intake = posed(dcgan, value, task, degraded, settings)
            key = f"page/{task}/{'degraded' if degraded else 'clean'}"
            out[key + "/observation"] = problem.observation.cpu()
            if problem.clean is not None:
                out[key + "/clean"] = problem.clean.cpu()
            if task == "inpaint":
                out[key + "/keep"] = problem.operator.keep.cpu()
                cfg = default_config(dcgan, task, "ilo", steps=[3, 3, 3, 3], seed=1)
                job = finished(Solve(dcgan, problem.operator, problem.observation, cfg))
                result = np.asarray(job.images().cpu().add(1).mul(127.5).round().clamp(0, 255)[0].permute(1, 2, 0),
                                    dtype=np.uint8)
                out[key + "/repaired"] = torch.from_numpy(intake(result))
    return out


def posed(dcgan, value, task, degraded, settings):
    """(the problem, result uint8 -> the repaired photo) from the page's intake, either tree's."""
    try:
        from ilo_core.photo.intake import PhotoTask, take_photo
    except ImportError:
        pose_problem, read_editor, repair = (find(name, "ilo_core.frontends.page", "ilo_core.studio")
                                             for name in ("pose_problem", "read_editor", "repair"))
        inputs = read_editor(value, dcgan.resolution, "landmarks", frame=dcgan.face_frame)
        problem = pose_problem(inputs, task, degraded, device=dcgan.device, **settings)
        return problem, lambda result: repair(inputs, result, task)
    photo = take_photo(value["background"], dcgan.resolution, "landmarks", dcgan.face_frame, layers=value["layers"])
    posed_task = PhotoTask(task, degraded, observed=settings["observed_pct"] / 100, factor=settings["factor"],
                           sigma=settings["sigma"], measurements=settings["measurements_pct"] / 100,
                           seed=settings["seed"])
    problem = photo.pose(posed_task, dcgan.device)
    return problem, lambda result: photo.paste(result, task)


def solve_all(generator, image, cases, steps, seed, **overrides) -> dict[str, torch.Tensor]:

    def answer(*args) -> torch.Tensor:  # what every caller runs (the mean of the starts where the defaults average several)
        return finished(Solve(*args)).images().cpu()

    out = {}
    for task, params, methods in cases:
        problem = simulate(task, image, seed=3, **params)
        for method in methods:
            cfg = default_config(generator, task, method, steps=steps, seed=seed, **overrides)
            out[f"{generator.kind}/{task}/{method}"] = answer(generator, problem.operator, problem.observation, cfg)
    return out


def main() -> int:
    if sys.argv[1] == "--compare":
        a, b = torch.load(sys.argv[2]), torch.load(sys.argv[3])
        same = 0
        for key in a:
            if key not in b or a[key].shape != b[key].shape:
                print(f"{key:45s} missing or another shape")
                continue
            x, y = a[key].double(), b[key].double()
            equal = torch.equal(x.nan_to_num(7.0), y.nan_to_num(7.0))
            same += equal
            print(f"{key:45s} {'bit-identical' if equal else f'{(x - y).abs().max().item():.2e}'}")
        print(f"{same} of {len(a)} outputs bit-identical ({len(set(b) - set(a))} only in the second file)")
        return 0 if same == len(a) == len(b) else 1
    load_generator = find("load_generator", "ilo_core.checkpoints", "ilo_core.generators")

    load_image = find("load_image", "ilo_core.photo.images", "ilo_core.images")
    PerceptualDistance = find("PerceptualDistance", "ilo_core.perceptual", "ilo_core.perceptual.distance")

    image = load_image(str(SHARED / "faces" / "astronaut_face.png"), 64)
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[20:40, 15:50] = True
    tasks = [("inpaint", {"mask": mask}), ("random-inpaint", {"observed": 0.2}), ("super-resolution", {"factor": 4}),
             ("denoise", {"sigma": 25}), ("compressed-sensing", {"measurements": 0.1})]
    dcgan = load_generator("default")
    out = solve_all(dcgan, image, [(t, p, ["ilo", "csgm-mse"]) for t, p in tasks], [5, 5, 5, 5], 1)
    lpips = solve_all(dcgan, image, [(t, p, ["ilo"]) for t, p in tasks if t in ("inpaint", "super-resolution",
                                                                                 "denoise")], [4, 4, 4, 4], 2,
                      lpips_weight=1.0)
    out.update({k + "+lpips": v for k, v in lpips.items()})
    out.update(engine_paths(dcgan, image))
    out.update(page_intake(dcgan))
    with tempfile.TemporaryDirectory() as folder:
        out.update(cli_intake(Path(folder)))
    stylegan = load_generator(str(SHARED / "reference" / "rosinality_g64.pt"))
    out.update(solve_all(stylegan, image, [(t, p, ["ilo"]) for t, p in tasks[:4]], [3, 3, 3, 3], 1))
    a = load_image(str(SHARED / "reference" / "lpips" / "ex_ref.png"), 64)
    b = load_image(str(SHARED / "reference" / "lpips" / "ex_p0.png"), 64)
    for net in ("alex", "vgg"):
        out[f"lpips/{net}"] = PerceptualDistance(net, 256)(a, b)
    torch.save(out, sys.argv[1])
    print(f"{len(out)} outputs -> {sys.argv[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
