"""Where it is guessing: the restarts' spread is larger inside a painted hole than outside."""

from __future__ import annotations

import pytest
import torch

from ilo_core.engine.presets import default_config
from ilo_core.engine.spread import restart_spread, spread_heatmap
from ilo_core.physics.problems import simulate


@pytest.mark.parametrize("face", [0, 1])
def test_the_spread_is_larger_inside_the_hole_than_outside(dcgan, faces64, face):
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[34:54, 14:50] = True
    problem = simulate("inpaint", faces64[face], mask=mask)
    config = default_config(dcgan, "inpaint", steps=[10, 10, 10, 10])
    results, spread = restart_spread(dcgan, problem, config, restarts=4)
    assert results.shape == (4, 3, 64, 64) and spread.shape == (64, 64)
    inside, outside = float(spread[mask].mean()), float(spread[~mask].mean())
    print(f"face {face}: spread inside the hole {inside:.4f}, outside {outside:.4f}")
    assert inside > 2 * outside
    heat = spread_heatmap(spread)
    assert heat.shape == (256, 256, 3) and heat.dtype.name == "uint8"


def test_the_spread_needs_two_restarts(dcgan, faces64):
    problem = simulate("denoise", faces64[0], sigma=25)
    with pytest.raises(ValueError, match="at least 2"):
        restart_spread(dcgan, problem, default_config(dcgan, "denoise", steps=[2]), restarts=1)
