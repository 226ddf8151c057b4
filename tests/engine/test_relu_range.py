"""The DCGAN's optimized state stays in its ReLU's range (`SolverConfig.relu_range`)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ilo_core.engine.config import SolverConfig
from ilo_core.engine.constraints import project_l1_ball
from ilo_core.engine.methods import solve as solve_mean
from ilo_core.engine.presets import default_config
from ilo_core.engine.solver import ILOSolver
from ilo_core.evaluation.grid_definition import DEFAULT_METHODS, Setting, inpainting_mask, method_config
from ilo_core.physics.metrics import hole_mse01, psnr_from_mse
from ilo_core.physics.problems import simulate


def test_the_defaults_keep_the_dcgan_state_non_negative_for_ilo_only(dcgan, stylegan64):
    for task in ("inpaint", "random-inpaint", "denoise", "super-resolution", "compressed-sensing"):
        assert default_config(dcgan, task, observed=0.1).relu_range
        assert default_config(dcgan, task, "ilo-auto", observed=0.1).relu_range
        assert not default_config(dcgan, task, "csgm-mse", observed=0.1).relu_range  # no state to keep
        assert not default_config(stylegan64, task, observed=0.1).relu_range  # leaky ReLUs: any sign
    assert dcgan.nonnegative_state and not stylegan64.nonnegative_state
    # the evaluation's ablation: "ilo-signed" is ILO with the sign free; a plain run leaves it out
    box = Setting("inpaint", "box", 0.0, {"mask": inpainting_mask("box", 64)})
    signed = method_config(dcgan, box, "ilo-signed", 50)
    assert not signed.relu_range and replace(signed, relu_range=True) == method_config(dcgan, box, "ilo", 50)
    assert not method_config(dcgan, box, "ilo-noproj", 50).relu_range and "ilo-signed" not in DEFAULT_METHODS


def test_relu_range_is_refused_on_a_generator_whose_state_can_be_negative(stylegan64):
    problem = simulate("inpaint", torch.zeros(1, 3, 64, 64), mask=inpainting_mask("box", 64))
    with pytest.raises(ValueError, match="set relu_range to False"):
        ILOSolver(stylegan64, problem.operator, problem.observation, SolverConfig(steps=(2, 2), relu_range=True))


def _run(solver: ILOSolver) -> ILOSolver:
    for _ in solver.run():
        pass
    return solver


def test_the_state_stays_non_negative_and_inside_its_l1_ball(dcgan, faces64):
    """One start, 4 rounds on a box: with relu_range the last round's state has no negative
    entry and still lies in the round's l1 ball around its (non-negative) start; without it the
    same solve reaches negative activations, which G_before never outputs."""
    problem = simulate("inpaint", torch.cat(faces64[:2]), mask=inpainting_mask("box", 64))
    config = default_config(dcgan, "inpaint", steps=[10, 10, 10, 30], starts=1, fill_detail=0.0, preview_every=10**6)
    kept = _run(ILOSolver(dcgan, problem.operator, problem.observation, config))
    loose = _run(ILOSolver(dcgan, problem.operator, problem.observation, replace(config, relu_range=False)))
    start = kept.round_start(3)
    with torch.no_grad():
        h0 = dcgan.advance(2, start["state"], start["variables"])["features"].cpu()  # [2, 128, 16, 16]
    assert float(h0.min()) >= 0
    for b, best in enumerate(kept.best):
        assert best.split == 3
        h = best.state["features"]
        assert float(h.min()) >= 0
        deviation = (h - h0[b:b + 1]).abs().sum()
        assert float(deviation) <= config.radius("state", 3) * (1 + 1e-5)
        assert torch.equal(project_l1_ball(h - h0[b:b + 1], config.radius("state", 3)), h - h0[b:b + 1])
    assert min(float(b.state["features"].min()) for b in loose.best) < 0


def test_keeping_the_state_in_range_fills_holes_better(dcgan, faces64):
    """Both example faces, the three small masks, one seed, the default solve (the mean of 6
    starts, 4 x 50 steps, no fill detail): the hole PSNR is not lower with the state kept >= 0
    (the evaluation's 2 example faces x 3 seeds: +0.29 dB; 4 real faces not tuned on: +0.24 dB)."""
    gains = []
    clean = torch.cat(faces64[:2])
    for shape in ("box", "eyes", "strokes"):
        problem = simulate("inpaint", clean, mask=inpainting_mask(shape, 64))
        psnr = {}
        for relu in (True, False):
            config = default_config(dcgan, "inpaint", preview_every=10**6, fill_detail=0.0, relu_range=relu)
            fill = solve_mean(dcgan, problem.operator, problem.observation, config).images().clamp(-1, 1)
            hole = hole_mse01(fill, clean, ~problem.operator.keep)
            psnr[relu] = sum(psnr_from_mse(float(m)) for m in hole) / len(hole)
        gains.append(psnr[True] - psnr[False])
    print(f"hole PSNR gain of relu_range per mask (box, eyes, strokes): {gains}")
    # measured +0.29 dB (evaluation) but below +0.1 dB on one machine's arithmetic: what must hold
    # everywhere is that the feasible set's bound costs the fill nothing on average
    assert sum(gains) / len(gains) > 0
