"""The ILO solver: validation, rounds, projections, best iterate, stop, NaN, save/reload."""

from __future__ import annotations

import math

import pytest
import torch

from ilo_core.engine.adam import Adam
from ilo_core.engine.config import SolverConfig
from ilo_core.engine.estimate import Estimate
from ilo_core.engine.methods import Solve
from ilo_core.engine.presets import default_config
from ilo_core.engine.reconstruction import Reconstruction
from ilo_core.engine.solver import ILOSolver, lr_schedule
from ilo_core.physics.metrics import psnr01
from ilo_core.physics.operators import Inpainting, SuperResolution

SR = SuperResolution(4, 64)


def solve(generator, operator, observation, config=None) -> ILOSolver:
    """Algorithm 1 run to its end: the finished solver."""
    solver = ILOSolver(generator, operator, observation, config)
    for _ in solver.run():
        pass
    return solver


@pytest.mark.parametrize("kwargs, message", [
    (dict(steps=(10, 0)), "positive integer"),
    (dict(steps="50,50"), "list of integers"),
    (dict(steps=()), "empty"),
    (dict(steps=(5, 5), radii={"state": [None, -1.0]}), "non-negative"),
    (dict(steps=(5, 5), radii={"state": [None]}), "1 entries for 2 rounds"),
    (dict(steps=(5, 5), lr=(0.1,)), "1 entries for 2 rounds"),
    (dict(steps=(5,), radii={"feature": [1.0]}), "unknown radius group"),
    (dict(mse_weight=0.0, lpips_weight=0.0), "both 0"),
    (dict(lpips_net="squeeze"), "lpips_net"),
    (dict(method="pulse"), "unknown method"),
    (dict(steps=(5,) * 6), "layers"),
])
def test_bad_config_values_raise_before_any_work(dcgan, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ILOSolver(dcgan, SR, torch.zeros(1, 3, 16, 16), SolverConfig(**kwargs))


def test_unknown_task_is_refused(dcgan):
    with pytest.raises(ValueError, match="unknown task"):
        default_config(dcgan, "deblur")


def test_learning_rate_schedule_ramps_up_and_down_and_is_never_zero():
    lrs = [lr_schedule(0.1, s, 100) for s in range(100)]
    assert all(lr > 0 for lr in lrs)
    assert max(lrs) == pytest.approx(0.1)
    assert lrs[0] < lrs[10] and lrs[-1] < lrs[50]


def test_adam_makes_the_same_updates_as_torch_optim_adam():
    torch.manual_seed(0)
    ours = [torch.randn(3, 4, requires_grad=True), torch.randn(5, requires_grad=True)]
    theirs = [p.detach().clone().requires_grad_(True) for p in ours]
    mine, reference = Adam(ours), torch.optim.Adam(theirs, lr=0.1)
    targets = [torch.randn(3, 4), torch.randn(5)]
    for step in range(30):
        lr = lr_schedule(0.1, step, 30)
        used = [0, 1] if step % 3 else [0]  # a tensor without a gradient is skipped, as torch does
        for params in (ours, theirs):
            sum((params[i] - targets[i]).pow(4).sum() for i in used).backward()
        mine.step(lr)
        for group in reference.param_groups:
            group["lr"] = lr
        reference.step()
        reference.zero_grad(set_to_none=True)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
    assert all(p.grad is None for p in ours)


def test_solve_streams_every_step_and_moves_through_the_layers(dcgan, faces64):
    y = SR.A(faces64[0])
    cfg = SolverConfig(steps=(4, 3, 2), lpips_weight=0.0, preview_every=2, radii={"state": [None, 100.0, 100.0]})
    events = list(ILOSolver(dcgan, SR, y, cfg).run())
    assert [e.split for e in events] == [0] * 4 + [1] * 3 + [2] * 2
    assert events[-1].done == events[-1].total == 9
    assert events[0].image is not None and events[0].image.shape == (1, 3, 64, 64)
    assert all(e.image is not None for e in events if e.step == e.round_steps - 1)


def test_the_state_stays_inside_its_l1_ball(dcgan, faces64):
    y = SR.A(faces64[0])
    radius = 20.0
    cfg = SolverConfig(steps=(3, 15), lpips_weight=0.0, radii={"state": [None, radius]})
    solver = ILOSolver(dcgan, SR, y, cfg)
    for _ in solver.run():
        pass
    best = solver.best[0]
    # recompute the round-1 start from the round-0 latent the solver ended with
    assert best.split == 1
    start = dcgan.state_at(1, best.variables)["features"]
    assert float((best.state["features"] - start).abs().sum()) <= radius * 1.001


def test_ilo_lowers_the_measurement_error_below_csgm(dcgan, faces64):
    y = SR.A(faces64[0])
    ilo = solve(dcgan, SR, y, default_config(dcgan, "super-resolution", "ilo", steps=[15, 15, 15], lpips_weight=0.0))
    csgm = solve(dcgan, SR, y, default_config(dcgan, "super-resolution", "csgm-mse", steps=[15, 15, 15]))
    assert ilo.best[0].measurement_mse < 0.5 * csgm.best[0].measurement_mse


def test_ilo_beats_csgm_on_true_error_for_inpainting_at_equal_steps(dcgan, faces64):
    x = faces64[1]
    op = Inpainting.box(64, 36, 12, 14, 40)
    y = op.A(x)
    steps = [20, 20, 20, 20]
    ilo = solve(dcgan, op, y, default_config(dcgan, "inpaint", "ilo", steps=steps, starts=1)).best_image()
    csgm = solve(dcgan, op, y, default_config(dcgan, "inpaint", "csgm-mse", steps=steps)).best_image()
    assert float(psnr01(ilo, x)) > float(psnr01(csgm, x)) + 2.0


def test_stopping_early_keeps_the_best_iterate(dcgan, faces64):
    y = SR.A(faces64[0])
    solver = ILOSolver(dcgan, SR, y, SolverConfig(steps=(50, 50), lpips_weight=0.0))
    run = solver.run()
    seen = [next(run) for _ in range(7)]
    run.close()
    assert solver.stopped_early
    best = solver.best[0]
    assert best is not None and best.measurement_mse == min(e.losses["measurement_mse"] for e in seen)
    assert torch.isfinite(solver.best_image()).all()


class ExplodingOperator:
    """A user operator (only `.A`) that returns NaN after a few calls."""

    def __init__(self) -> None:
        self.calls = 0

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        self.calls += 1
        out = x[:, :, ::4, ::4]
        return out * math.nan if self.calls > 10 else out


def test_a_nan_is_reported_and_the_best_finite_iterate_is_returned(dcgan, faces64):
    op = ExplodingOperator()
    y = faces64[0][:, :, ::4, ::4]
    solver = ILOSolver(dcgan, op, y, SolverConfig(steps=(30,), lpips_weight=0.0))
    messages = [e.message for e in solver.run() if e.message]
    assert solver.nan_detected and messages and "non-finite" in messages[0]
    assert torch.isfinite(solver.best_image()).all()


def test_lpips_with_an_operator_without_image_view_is_a_clear_error(dcgan):
    with pytest.raises(ValueError, match="LPIPS needs an image view"):
        ILOSolver(dcgan, ExplodingOperator(), torch.zeros(1, 3, 16, 16), SolverConfig(steps=(2,)))


def test_a_saved_result_reloads_and_re_renders_the_same_image(dcgan, faces64, tmp_path):
    y = SR.A(faces64[0])
    solver = solve(dcgan, SR, y, SolverConfig(steps=(3, 3), lpips_weight=0.0, radii={"state": [None, 50.0]}))
    best = solver.best[0]
    best.save(tmp_path / "result.safetensors")
    loaded = Reconstruction.load(tmp_path / "result.safetensors")
    assert loaded.split == best.split and loaded.config["steps"] == [3, 3]
    assert (loaded.render(dcgan) - best.image).abs().max() < 1e-6


def test_stylegan_rounds_use_the_geodesic_loss_in_every_round(stylegan64):
    op = SuperResolution(4, 64)
    target = stylegan64.render(stylegan64.sample_variables(1, torch.Generator().manual_seed(9))).detach()
    cfg = default_config(stylegan64, "super-resolution", "ilo", steps=[2, 2, 2], lpips_weight=0.0)
    events = list(ILOSolver(stylegan64, op, op.A(target), cfg).run())
    later = [e for e in events if e.round_index > 0 and e.step > 0]
    assert later and all(e.losses["geodesic"] > 0 for e in later)
    assert {e.split for e in events} == {0, 1, 2}


def test_projection_back_to_the_range_runs_between_rounds(dcgan, faces64):
    y = SR.A(faces64[0])
    cfg = SolverConfig(steps=(3, 3, 3), lpips_weight=0.0, range_projection_steps=5, radii={"state": [None, 50.0, 50.0]})
    solver = solve(dcgan, SR, y, cfg)
    assert solver.best[0] is not None and not solver.nan_detected


def test_csgm_baselines_are_round_zero_with_the_same_budget(dcgan):
    ilo = default_config(dcgan, "inpaint", "ilo", steps=[10, 20, 30])
    for method in ("csgm-mse", "csgm-lpips", "csgm-mse-lpips"):
        cfg = default_config(dcgan, "inpaint", method, steps=[10, 20, 30])
        assert cfg.steps == (60,) and cfg.total_steps == ilo.total_steps
    assert default_config(dcgan, "inpaint", "csgm-lpips").mse_weight == 0


def test_the_best_of_three_runs_keeps_the_best_of_all(dcgan, faces64):
    y = SR.A(faces64[0])
    runs = []
    for best_of in (1, 3):
        job = Solve(dcgan, SR, y, SolverConfig(steps=(5,), lpips_weight=0.0, estimate=Estimate(best_of=best_of)))
        events = list(job.run())
        runs.append(job)
    one, three = runs
    assert [e.done for e in events] == list(range(1, 16)) and {e.total for e in events} == {15}
    assert [e.restart for e in events[::5]] == [0, 1, 2]
    assert three.best[0].measurement_mse <= one.best[0].measurement_mse
    assert three.best[0].measurement_mse == min(run.best[0].measurement_mse for run in three.runs)
    assert torch.equal(three.runs[0].best[0].image, one.best[0].image)  # the first run is the one-run solve


def _inpaint_solver(dcgan, faces64, steps=(5, 5, 5, 5), **overrides):
    from ilo_core.engine.presets import default_config
    from ilo_core.physics.problems import simulate

    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[36:52, 14:50] = True
    problem = simulate("inpaint", faces64[0], mask=mask)
    config = default_config(dcgan, "inpaint", steps=list(steps), seed=2, **{"starts": 1, **overrides})
    return ILOSolver(dcgan, problem.operator, problem.observation, config), config


def test_rerun_from_a_round_with_unchanged_settings_is_bit_identical_to_the_full_run(dcgan, faces64):
    solver, config = _inpaint_solver(dcgan, faces64)
    list(solver.run())
    full = solver.best_image().clone()
    events = list(solver.rerun_from(2, config))
    assert torch.equal(solver.best_image(), full)
    assert {e.round_index for e in events} == {2, 3} and len(events) == 10


def test_a_finished_run_can_be_extended_by_a_round_bit_identically_to_the_longer_run(dcgan, faces64):
    short, config = _inpaint_solver(dcgan, faces64, steps=(5, 5, 5))
    list(short.run())
    longer, longer_config = _inpaint_solver(dcgan, faces64, steps=(5, 5, 5, 5))
    list(longer.run())
    events = list(short.rerun_from(3, longer_config))
    assert {e.round_index for e in events} == {3} and len(events) == 5
    assert torch.equal(short.best_image(), longer.best_image())


def test_rerun_from_round_k_leaves_the_earlier_rounds_untouched(dcgan, faces64):
    import dataclasses

    solver, config = _inpaint_solver(dcgan, faces64)
    list(solver.run())
    before = {r: {k: v.clone() for k, v in solver._round_starts[r]["state"].items()} for r in range(4)}
    full = solver.best_image().clone()
    changed = dataclasses.replace(config, radii={"latents": [None] * 4, "state": [None, 300.0, 600.0, 50.0]})
    events = list(solver.rerun_from(3, changed))
    assert {e.round_index for e in events} == {3}
    for r in range(4):  # the kept starts of rounds 0..3 are those of the first run
        for k, v in before[r].items():
            assert torch.equal(solver._round_starts[r]["state"][k], v)
    assert not torch.equal(solver.best_image(), full)


def test_rerun_from_refuses_settings_that_change_earlier_rounds(dcgan, faces64):
    import dataclasses

    solver, config = _inpaint_solver(dcgan, faces64)
    list(solver.run())
    with pytest.raises(ValueError, match="run the whole solve again"):
        list(solver.rerun_from(2, dataclasses.replace(config, steps=(6, 5, 5, 5))))
    with pytest.raises(ValueError, match="run the whole solve again"):
        list(solver.rerun_from(2, dataclasses.replace(config, mse_weight=2.0)))
