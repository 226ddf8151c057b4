"""Outputs of fixed solves, to compare two trees of the engine (issue 13: equal within 1e-6).

DCGAN: five tasks x ILO / CSGM-MSE, and ILO + LPIPS on three; rosinality's 64 px StyleGAN-2:
four tasks; LPIPS alex and vgg distances. Needs ../shared (or ILO_SHARED).

    PYTHONPATH=TREE_A python scripts/fixed_outputs.py a.pt
    PYTHONPATH=TREE_B python scripts/fixed_outputs.py b.pt
    python scripts/fixed_outputs.py --compare a.pt b.pt
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

SHARED = Path(os.environ.get("ILO_SHARED", Path(__file__).resolve().parent.parent.parent / "shared"))


def solve_all(generator, image, cases, steps, seed, **overrides) -> dict[str, torch.Tensor]:
    from ilo_core.defaults import default_config
    from ilo_core.problems import simulate

    try:  # what every caller runs (the mean of the starts where the defaults average several)
        from ilo_core.methods import solve

        def answer(*args) -> torch.Tensor:
            return solve(*args).images().cpu()
    except ImportError:  # a tree from before ilo_core.methods
        from ilo_core.solver import solve

        def answer(*args) -> torch.Tensor:
            return solve(*args).best_image()

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
        for key in a:
            print(f"{key:45s} {(a[key] - b[key]).abs().max().item():.2e}")
        return 0
    from ilo_core.generators import load_generator
    from ilo_core.images import load_image
    from ilo_core.perceptual import PerceptualDistance

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
