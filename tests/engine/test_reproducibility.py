"""The same seed gives the same result, bit for bit: every random draw of a solve (start,
masks, measurements, observation noise, stochastic noise addition) comes from a seeded
generator, never the global one, which this torch build seeds differently per process."""

from __future__ import annotations

import hashlib
import os
import json
import subprocess
import sys
from pathlib import Path

import torch

from conftest import FACES, ROOT

TASKS = {"inpaint": dict(mask="box"), "random-inpaint": dict(observed=0.2), "super-resolution": dict(factor=4),
         "denoise": dict(sigma=30), "compressed-sensing": dict(measurements=0.1)}


def digests(seed: int = 3) -> dict[str, str]:
    """sha256 of each task's result (embedded DCGAN, 4 x 3 steps, defaults incl. SNA for denoising)."""
    from ilo_core.engine.presets import default_config
    from ilo_core.checkpoints import load_generator
    from ilo_core.photo.images import load_image
    from ilo_core.physics.problems import simulate
    from ilo_core.engine.methods import solve

    torch.set_num_threads(2)
    generator = load_generator("default")
    clean = load_image(FACES / "astronaut_face.png", generator.resolution)
    out = {}
    for task, params in TASKS.items():
        if params.get("mask") == "box":
            mask = torch.zeros(64, 64, dtype=torch.bool)
            mask[20:40, 12:52] = True
            params = {"mask": mask}
        problem = simulate(task, clean, seed=seed, **params)
        config = default_config(generator, task, "ilo", observed=params.get("observed"), steps=[3, 3, 3, 3], seed=seed)
        images = solve(generator, problem.operator, problem.observation, config).images()
        data = torch.cat([problem.observation.flatten(), images.cpu().flatten()])
        out[task] = hashlib.sha256(data.numpy().tobytes()).hexdigest()
    return out


def test_every_task_gives_bit_identical_results_twice_in_a_process_and_in_another_process():
    first, second = digests(), digests()
    code = "import json; from test_reproducibility import digests; print(json.dumps(digests()))"
    path = os.pathsep.join([str(Path(__file__).resolve().parent), str(ROOT / "tests"), str(ROOT)])
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600,
                           env={**os.environ, "PYTHONPATH": path})
    assert other.returncode == 0, other.stderr
    assert first == second
    assert json.loads(other.stdout.strip().splitlines()[-1]) == first


def test_a_different_seed_changes_the_denoising_result():
    assert digests(3)["denoise"] != digests(4)["denoise"]
