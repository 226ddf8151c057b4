"""SNA ablation at sigma 30 with and without LPIPS, and without the l1 balls (PSNR dB), on the
evaluation's images (2 faces + 2 samples) x 3 seeds: `python -m ilo_core.evaluation.studies sna_ablation`.
docs/evaluation/findings.md has the figures."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ilo_core.checkpoints import load_generator
from ilo_core.engine.methods import solve
from ilo_core.engine.presets import default_config
from ilo_core.evaluation.grid_definition import evaluation_images
from ilo_core.physics.problems import evaluate_batch, simulate


def main() -> None:
    G = load_generator("default")
    images = evaluation_images(G, None, 2)
    clean = torch.cat([im.image for im in images])
    rows = {}
    for seed in (0, 1, 2):
        p = simulate("denoise", clean, seed=seed, sigma=30.0)
        ilo = default_config(G, "denoise", "ilo", preview_every=10**6, seed=seed)
        csgm = default_config(G, "denoise", "csgm-mse", preview_every=10**6, seed=seed)
        variants = {"CSGM-MSE": csgm, "CSGM-MSE+LPIPS": replace(csgm, lpips_weight=1.0),
                    "ILO (MSE)": ilo, "ILO (MSE+LPIPS)": replace(ilo, lpips_weight=1.0),
                    "ILO no l1 balls": replace(ilo, l1_projection=False)}
        for name, cfg in variants.items():
            for sna in (False, True):
                img = solve(G, p.operator, p.observation, replace(cfg, sna=sna)).images()
                rows.setdefault((name, sna), []).extend(m["psnr"] for m in evaluate_batch(img, p))
    print("| method | without SNA | with SNA | gain |\n|---|---:|---:|---:|")
    for name in dict.fromkeys(n for n, _ in rows):
        a, b = np.mean(rows[(name, False)]), np.mean(rows[(name, True)])
        print(f"| {name} | {a:.2f} | {b:.2f} | {b - a:+.2f} |")


if __name__ == "__main__":
    main()
