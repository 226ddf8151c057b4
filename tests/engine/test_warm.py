"""Warm starts (`ilo_core.engine.warm`): a clip's later frame re-runs the key frame's last rounds
from its neighbour's variables, inside smaller l1 balls around them."""

from __future__ import annotations

import math

import pytest
import torch

from ilo_core.engine.methods import Solve
from ilo_core.engine.presets import default_config
from ilo_core.engine.warm import WarmStart, carry_over, chain_round, warm_config
from ilo_core.evaluation.grid_definition import inpainting_mask
from ilo_core.physics.metrics import measurement_mse
from ilo_core.physics.problems import simulate


def test_a_warm_config_is_the_key_frames_last_rounds_with_smaller_balls(dcgan, stylegan64):
    key = default_config(dcgan, "inpaint", steps=[20, 20, 20, 20])
    warm = warm_config(key, WarmStart(steps=7, rounds=2, radius_share=0.5))
    assert (warm.start_split, tuple(warm.steps)) == (2, (7, 7))
    assert warm.radius("state", 0) == 0.5 * key.radius("state", 2)
    assert warm.radius("state", 1) == 0.5 * key.radius("state", 3)
    assert warm.radius("latents", 0) == math.inf  # unconstrained in the key frame: so here
    assert warm.estimate.starts == key.estimate.starts and warm.estimate.rounds_averaged <= 2
    assert chain_round(key, WarmStart(rounds=2)) == 3  # round 3 starts from round 2's state at split 2
    assert chain_round(warm, WarmStart(rounds=2)) == 1
    given = warm_config(default_config(stylegan64, "super-resolution"), WarmStart(radii={"noises": 7.0}))
    assert given.radius("noises", 0) == given.radius("noises", 1) == 7.0
    for bad, words in ((WarmStart(steps=0), "positive whole number of steps"), (WarmStart(rounds=5), "at most"),
                       (WarmStart(radius_share=0), "radius share"), (WarmStart(carry=1.0), "below 1"),
                       (WarmStart(radii={"colour": 1.0}), "unknown radius group")):
        with pytest.raises(ValueError, match=words):
            warm_config(key, bad)


def test_a_warm_frame_starts_where_its_neighbour_ended_and_adapts_to_its_own_observation(dcgan, faces64):
    mask = inpainting_mask("eyes", 64)
    key_problem = simulate("inpaint", faces64[0], mask=mask)
    key = default_config(dcgan, "inpaint", steps=[15, 15, 15, 15], starts=2, fill_detail=0.0)
    first = Solve(dcgan, key_problem.operator, key_problem.observation, key)
    for _ in first.run():
        pass
    chain = first.final_variables(chain_round(key, WarmStart()))
    assert chain["state"]["features"].shape[0] == 2  # every start's row
    # radii ~0: the warm frame cannot move, so it renders what its neighbour's round 2 ended on
    frozen = warm_config(key, WarmStart(steps=3, radius_share=1e-9))
    still = Solve(dcgan, key_problem.operator, key_problem.observation, frozen, start=chain)
    events = list(still.run())
    assert len(events) == 6  # 2 rounds of 3 steps, nothing else
    with torch.no_grad():
        neighbour = dcgan.render_from(2, chain["state"], chain["variables"]).mean(0, keepdim=True)
    assert (still.images() - neighbour).abs().max() < 1e-3
    # the next frame (the face a little brighter): the warm frame fits it better than its neighbour's answer
    brighter = simulate("inpaint", (faces64[0] * 0.85 + 0.15).clamp(-1, 1), mask=mask)
    moved = Solve(dcgan, brighter.operator, brighter.observation, warm_config(key, WarmStart()), start=chain)
    for _ in moved.run():
        pass
    before = measurement_mse(brighter.operator.A(first.images()), brighter.observation)
    after = measurement_mse(brighter.operator.A(moved.images()), brighter.observation)
    assert float(after) < float(before)


def test_ilo_auto_is_not_warm_started_and_carry_keeps_a_share(dcgan, faces64):
    problem = simulate("inpaint", faces64[0], mask=inpainting_mask("eyes", 64))
    config = default_config(dcgan, "inpaint", "ilo-auto", steps=[5, 5, 5, 5])
    with pytest.raises(ValueError, match="not ilo-auto"):
        Solve(dcgan, problem.operator, problem.observation, config, start={"state": {}, "variables": {}})
    a, b = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    assert torch.equal(carry_over(a, b, 0.25), torch.full((1, 3, 4, 4), 0.25))
    assert carry_over(a, None, 0.5) is a
