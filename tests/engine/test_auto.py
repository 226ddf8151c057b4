"""Self-tuned ILO (`ilo_core.engine.auto`): held-out measurements, candidates as one batch, the choice kept."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ilo_core.engine.auto import (EVIDENCE, SCALES, AutoSolve, MaskedMeasurements, choose, held_out_mse, held_out_split,
                                  paired_scores)
from ilo_core.engine.config import SolverConfig
from ilo_core.engine.presets import default_config
from ilo_core.engine.solver import ILOSolver
from ilo_core.physics.operators import CompressedSensing, Inpainting, RandomInpainting
from ilo_core.physics.problems import simulate


def test_a_holes_held_out_ring_is_observed_pixels_next_to_it():
    op = Inpainting.box(64, 20, 20, 10, 10)
    y = torch.zeros(1, 3, 64, 64)
    train, held, text = held_out_split(op, y)
    ring = held[0, 0]
    assert "ring" in text and ring.any()
    assert not (ring & ~op.keep[0, 0]).any()                  # only observed pixels are held out
    assert not (train.keep[0, 0] & ring).any()                # ... and the candidates do not see them
    assert (train.keep[0, 0] | ring).equal(op.keep[0, 0])
    rows, cols = ring.nonzero(as_tuple=True)
    assert rows.min() >= 20 - 4 and rows.max() < 30 + 4 and cols.min() >= 20 - 4 and cols.max() < 30 + 4


@pytest.mark.parametrize("op", [RandomInpainting(64, 0.3, seed=1), CompressedSensing((3, 16, 16), 0.5, seed=1)],
                         ids=["random-pixels", "compressed-sensing"])
def test_random_measurements_hold_out_about_fifteen_percent(op):
    x = torch.rand(1, 3, op.keep.shape[-1], op.keep.shape[-1]) if isinstance(op, Inpainting) else torch.rand(1, 3, 16, 16)
    y = op.A(x)
    train, held, _ = held_out_split(op, y)
    observed = op.keep.expand_as(y) if isinstance(op, Inpainting) else torch.ones_like(y, dtype=torch.bool)
    share = held.float().sum() / observed.float().sum()
    assert 0.1 < float(share) < 0.2
    if isinstance(train, MaskedMeasurements):
        assert torch.equal(train.A(x)[held], torch.zeros(int(held.sum())))
    assert float(held_out_mse(op, x, y, held)[0]) < 1e-10      # the clean image explains the held-out part


def test_auto_solve_chooses_per_image_and_saves_its_choice(dcgan, faces64):
    clean = torch.cat(faces64[:2])
    missing = torch.zeros(64, 64, dtype=torch.bool)
    missing[18:32, 12:52] = True
    problem = simulate("inpaint", clean, mask=missing)
    config = default_config(dcgan, "inpaint", "ilo-auto", steps=[6, 6, 6, 6], preview_every=10**6, starts=1)
    auto = AutoSolve(dcgan, problem.operator, problem.observation, config)
    events = list(auto.run())
    assert len(events) == auto.total_steps and events[-1].done == auto.total_steps
    assert auto.work_steps <= 2 * config.total_steps  # at most twice a default solve's work
    assert len(auto.choices) == 2
    for b, choice in enumerate(auto.choices):
        assert choice.radius_scale in SCALES and 2 <= choice.rounds <= 4
        assert len(choice.candidates) == len(SCALES) * 3
        default = next(c for c in choice.candidates if c["radius_scale"] == 1.0 and c["rounds"] == 4)
        assert default["gain"] == 0 and default["gain_se"] == 0
        better = [c for c in choice.candidates if c["gain"] + EVIDENCE * c["gain_se"] < 0]
        assert choice.held_out_mse == min(c["held_out_mse"] for c in better or [default])
        best = auto.solver.best[b]
        assert best is not None and best.round_index < choice.rounds
        saved = SolverConfig.from_dict(best.config)
        assert saved.method == "ilo-auto" and saved.rounds == choice.rounds
        assert saved.radii["state"][1] == pytest.approx(config.radii["state"][1] * choice.radius_scale)
    assert torch.isfinite(auto.best_image()).all()


def test_another_schedule_needs_evidence_to_replace_the_default():
    g = torch.Generator().manual_seed(0)
    default = torch.rand(200, generator=g)
    mask = torch.ones(200, dtype=torch.bool)
    noisy = default + 0.3 * torch.randn(200, generator=g)          # no better on average, noisy
    clearly = default - 0.2                                        # lower everywhere
    rows = [{"radius_scale": 1.0, "rounds": 4, **dict(zip(("held_out_mse", "gain", "gain_se"),
                                                          paired_scores(default, default, [(mask, 1.0)])))},
            {"radius_scale": 4.0, "rounds": 3, **dict(zip(("held_out_mse", "gain", "gain_se"),
                                                          paired_scores(noisy - 0.01, default, [(mask, 1.0)])))}]
    assert (choose(rows, 4, "").radius_scale, choose(rows, 4, "").rounds) == (1.0, 4)
    rows[1].update(zip(("held_out_mse", "gain", "gain_se"), paired_scores(clearly, default, [(mask, 1.0)])))
    assert (choose(rows, 4, "").radius_scale, choose(rows, 4, "").rounds) == (4.0, 3)


def test_the_standard_error_counts_blocks_of_neighbouring_pixels_as_one_draw():
    """The same per-pixel differences, independent or constant over 8 x 8 patches: the gain is
    the same, its standard error much larger when neighbours move together (and about the
    plain one when they do not)."""
    g = torch.Generator().manual_seed(0)
    default = torch.rand(3, 64, 64, generator=g)
    mask = torch.ones(3, 64, 64, dtype=torch.bool)
    patches = torch.randn(1, 3, 8, 8, generator=g)
    smooth = torch.nn.functional.interpolate(patches, scale_factor=8, mode="nearest")[0] * 0.01
    shuffled = smooth.flatten()[torch.randperm(smooth.numel(), generator=g)].view_as(smooth)
    _, gain_a, se_smooth = paired_scores(default + smooth, default, [(mask, 1.0)])
    _, gain_b, se_iid = paired_scores(default + shuffled, default, [(mask, 1.0)])
    assert gain_a == pytest.approx(gain_b, abs=1e-9)
    plain = float(shuffled.std()) / shuffled.numel() ** 0.5
    assert se_iid == pytest.approx(plain, rel=0.25) and se_smooth > 3 * se_iid


def test_candidate_radius_scales_are_per_item_radii(dcgan):
    op = Inpainting.box(64, 20, 20, 20, 20)
    y = op.A(dcgan.render(dcgan.sample_variables(1, torch.Generator().manual_seed(0)))).repeat(2, 1, 1, 1)
    cfg = SolverConfig(steps=(3, 5), lpips_weight=0.0, geodesic_weight=0.0, radii={"state": [None, 50.0]})
    solver = ILOSolver(dcgan, op, y, cfg, radius_scales=torch.tensor([0.0, 1.0]))
    for _ in solver.run():
        pass
    frozen, free = solver.best_after_round[1]
    start = solver.round_start(1)
    assert frozen is not None and free is not None
    with torch.no_grad():
        h0 = dcgan.state_at(1, {k: v[:1] for k, v in start["variables"].items()})["features"]
    assert (frozen.state["features"] - h0).abs().max() < 1e-5   # a zero radius keeps the state where it started
    assert (free.state["features"] - h0).abs().sum() > 1.0
    with pytest.raises(ValueError, match="radius_scales"):
        ILOSolver(dcgan, op, y, cfg, radius_scales=torch.tensor([1.0]))


@pytest.mark.parametrize("observed", [0.05, 0.25], ids=["5%", "25%"])
def test_too_few_held_out_pixels_keep_the_default_schedule_at_ilos_cost(dcgan, faces64, observed):
    """At 5 % of 64 x 64 pixels 15 % of them is about 30 pixels (90 entries): too few to choose
    on, so ilo-auto is plain ILO, bit for bit and at its cost; at 25 % it tries its candidates."""
    problem = simulate("random-inpaint", faces64[0], observed=observed, seed=2)
    config = default_config(dcgan, "random-inpaint", "ilo-auto", observed=observed, steps=[4, 4, 4, 4], starts=1)
    auto = AutoSolve(dcgan, problem.operator, problem.observation, config)
    events = list(auto.run())
    assert auto.too_few == (observed == 0.05) and len(events) == auto.total_steps
    if not auto.too_few:
        assert auto.work_steps > config.total_steps and len(auto.choices[0].candidates) == 3 * len(SCALES)
        return
    assert auto.work_steps == config.total_steps and auto.choices[0].candidates == []
    assert "too few to choose on" in auto.choices[0].describe() and auto.choices[0].radius_scale == 1.0
    plain = ILOSolver(dcgan, problem.operator, problem.observation, replace(config, method="ilo"))
    for _ in plain.run():
        pass
    assert torch.equal(auto.best_image(), plain.best_image())
    assert SolverConfig.from_dict(auto.solver.best[0].config).method == "ilo-auto"


def test_the_cli_reports_the_choice(tmp_path):
    import json

    from conftest import FACES
    from conftest import run_cli, write_mask

    mask = write_mask(tmp_path / "mask.png", (128, 128), slice(40, 60), slice(20, 108))
    out = run_cli("--image", str(FACES / "astronaut_face.png"), "--task", "inpaint", "--mask", str(mask),
                  "--method", "ilo-auto", "--steps", "5,5,5,5", "--out", str(tmp_path / "out.png"),
                  "--report", str(tmp_path / "report.json"), "--quiet")
    assert out.returncode == 0, out.stderr
    assert "auto radii" in out.stderr and "radius x" in out.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["method"] == "ilo-auto" and report["auto"]["radius_scale"] in SCALES
    assert "ring" in report["auto"]["held_out"] and len(report["auto"]["candidates"]) == 3 * len(SCALES)


def test_the_page_logic_runs_auto_radii_and_says_what_it_chose(dcgan, faces64, tmp_path):
    from ilo_core.frontends.page import METHOD_LABELS, StopFlag, build_config, run_job

    assert METHOD_LABELS["ILO, auto radii"] == "ilo-auto"
    missing = torch.zeros(64, 64, dtype=torch.bool)
    missing[40:52, 16:48] = True
    problem = simulate("inpaint", faces64[0], mask=missing)
    cfg = build_config(dcgan, "inpaint", "ilo-auto", steps=[4, 4, 4, 4], radii={"state": [0, 300, 600, 1200]},
                       observed_pct=10, mse_weight=1, lpips_weight=0, geodesic_weight=0, lr=0.1, seed=0)
    updates = list(run_job(dcgan, problem, {"ILO, auto radii": cfg}, StopFlag(), tmp_path, min_interval=0))
    final = updates[-1].final
    note = final["results"]["ILO, auto radii"]["note"] if final is not None else ""
    assert "auto radii" in note and "radius x" in note
    assert any("trying radius scales" in u.status for u in updates[:-1])
