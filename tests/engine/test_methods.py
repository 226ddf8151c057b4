"""The answer as an estimate (`ilo_core.engine.estimate`): the mean of several starts, rounds averaged, fill detail."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ilo_core.engine.auto import AutoSolve
from ilo_core.engine.config import SolverConfig
from ilo_core.engine.estimate import Estimate, gaussian_blur, medoid, with_detail
from ilo_core.engine.methods import Solve, solve
from ilo_core.engine.presets import default_config
from ilo_core.engine.reconstruction import Reconstruction
from ilo_core.engine.solver import ILOSolver
from ilo_core.evaluation.grid_definition import evaluation_images, inpainting_mask
from ilo_core.generators import DCGANGenerator
from ilo_core.physics.metrics import hole_mse01
from ilo_core.physics.problems import simulate

DCGAN_FILL_STARTS = DCGANGenerator.tuning.fill_starts


def _eyes_problem(faces64, n: int = 2):
    return simulate("inpaint", torch.cat(faces64[:n]), mask=inpainting_mask("eyes", 64))


def test_defaults_average_six_starts_for_dcgan_fills_only(dcgan, stylegan64):
    assert default_config(dcgan, "inpaint").estimate.starts == DCGAN_FILL_STARTS == 6
    assert default_config(dcgan, "random-inpaint", observed=0.05).estimate.starts == 6
    assert default_config(dcgan, "inpaint", "ilo-auto").estimate.starts == 6
    assert default_config(dcgan, "inpaint", "csgm-mse").estimate.starts == 1  # the baselines keep one start
    assert default_config(dcgan, "super-resolution").estimate.starts == 1
    assert default_config(stylegan64, "inpaint").estimate.starts == 1


def test_a_bad_estimate_is_refused_before_work_starts_and_the_solver_never_reads_it(dcgan, faces64):
    with pytest.raises(ValueError, match="starts must be a positive integer"):
        SolverConfig(estimate=Estimate(starts=0)).validate()
    with pytest.raises(ValueError, match="cannot be combined"):
        SolverConfig(estimate=Estimate(starts=2, best_of=2)).validate()
    problem = _eyes_problem(faces64, 1)
    config = default_config(dcgan, "inpaint", steps=[2, 2])
    assert config.estimate.starts == DCGAN_FILL_STARTS
    solver = ILOSolver(dcgan, problem.operator, problem.observation, config)  # Algorithm 1: one start per row
    events = list(solver.run())
    assert solver.batch == 1 and len(events) == 4 and events[-1].image.shape[0] == 1


def test_one_start_is_exactly_the_plain_solver(dcgan, faces64):
    problem = _eyes_problem(faces64)
    config = default_config(dcgan, "inpaint", steps=[4, 4, 4, 4], starts=1, rounds_averaged=1)
    plain = ILOSolver(dcgan, problem.operator, problem.observation, config)
    for _ in plain.run():
        pass
    job = solve(dcgan, problem.operator, problem.observation, config)
    assert torch.equal(job.images().cpu(), plain.best_image()) and job.spread() is None


def test_the_answer_is_the_mean_of_the_starts_and_re_renders_from_its_file(dcgan, faces64, tmp_path):
    problem = _eyes_problem(faces64)
    config = default_config(dcgan, "inpaint", steps=[5, 5, 5, 5], preview_every=3, fill_detail=0.0, rounds_averaged=1)
    job = Solve(dcgan, problem.operator, problem.observation, config)
    events = list(job.run())
    assert len(events) == job.total_steps == 20
    assert all(e.image is None or e.image.shape == (2, 3, 64, 64) for e in events)  # previews: the means
    rows = job.solver.best_image().view(2, DCGAN_FILL_STARTS, 3, 64, 64)
    assert torch.allclose(job.images().cpu(), rows.mean(1))
    best = job.best[1]
    assert best.state["features"].shape[0] == DCGAN_FILL_STARTS and best.config["estimate"]["starts"] == DCGAN_FILL_STARTS
    best.save(tmp_path / "state.safetensors")
    again = Reconstruction.load(tmp_path / "state.safetensors")
    assert torch.allclose(again.render(dcgan).cpu(), best.image, atol=1e-5)
    spread = job.spread()
    assert spread.shape == (2, 64, 64) and bool((spread >= 0).all())


def test_defaults_average_the_last_two_rounds_in_holes_and_sparse_random_pixels(dcgan, stylegan64):
    assert default_config(dcgan, "inpaint").estimate.rounds_averaged == DCGANGenerator.tuning.fill_rounds == 2
    assert default_config(dcgan, "random-inpaint", observed=0.05, method="ilo-auto").estimate.rounds_averaged == 2
    # random pixels from 20 % observed: the last round's closer fit to them wins (1.2x lower error at 50 %)
    assert default_config(dcgan, "random-inpaint", observed=0.25).estimate.rounds_averaged == 1
    assert default_config(dcgan, "random-inpaint", observed=0.25).estimate.starts == DCGAN_FILL_STARTS
    assert default_config(dcgan, "inpaint", "csgm-mse").estimate.rounds_averaged == 1
    assert default_config(dcgan, "denoise").estimate.rounds_averaged == 1
    assert default_config(stylegan64, "inpaint").estimate.rounds_averaged == 1
    with pytest.raises(ValueError, match="rounds_averaged must be a positive integer"):
        SolverConfig(estimate=Estimate(rounds_averaged=0)).validate()
    with pytest.raises(ValueError, match="best_of .* cannot be combined"):
        SolverConfig(estimate=Estimate(rounds_averaged=2, best_of=2)).validate()


def test_the_answer_averages_each_starts_last_two_rounds_and_re_renders_from_its_file(dcgan, faces64, tmp_path):
    """With mean_rounds = 2 each image's answer is the mean of its starts' best iterates after the
    last round and after the round before (2K iterates, saved and re-rendered as one result)."""
    problem = _eyes_problem(faces64)
    config = default_config(dcgan, "inpaint", steps=[5, 5, 5, 5], fill_detail=0.0)
    assert config.estimate.rounds_averaged == 2
    job = solve(dcgan, problem.operator, problem.observation, config)
    k = DCGAN_FILL_STARTS
    last, before = (torch.cat([b.image for b in job.solver.best_after_round[r]]).view(2, k, 3, 64, 64)
                    for r in (3, 2))
    assert all(b.round_index == 3 for b in job.solver.best) and all(b.round_index == 2 for b in job.solver.best_after_round[2])
    assert torch.allclose(job.images().cpu(), torch.cat([last, before], 1).mean(1), atol=1e-6)
    assert not torch.allclose(job.images().cpu(), last.mean(1), atol=1e-3)
    best = job.best[0]
    assert best.state["features"].shape[0] == 2 * k and best.config["estimate"]["rounds_averaged"] == 2
    best.save(tmp_path / "state.safetensors")
    assert torch.allclose(Reconstruction.load(tmp_path / "state.safetensors").render(dcgan).cpu(), best.image, atol=1e-5)
    assert job.spread().shape == (2, 64, 64)  # the spread stays the K starts' own


def test_the_last_two_rounds_fill_the_generators_own_faces_better(dcgan):
    """On 2 held-out generator samples (box and eyes holes, the default 4 x 50 steps, no fill
    detail): the mean of the starts' last two rounds fills the hole with less error than the
    mean of their last round alone (measured: +0.8 dB on the box, +1.1 dB on the eyes)."""
    images = torch.cat([im.image for im in evaluation_images(dcgan, None, 2, faces=0)])
    for shape in ("box", "eyes"):
        missing = inpainting_mask(shape, 64)
        problem = simulate("inpaint", images, mask=missing)
        job = solve(dcgan, problem.operator, problem.observation, default_config(dcgan, "inpaint", fill_detail=0.0))
        two = hole_mse01(job.images().cpu(), images.cpu(), missing)
        last = torch.cat([b.image for b in job.solver.best]).view(2, DCGAN_FILL_STARTS, 3, 64, 64).mean(1)
        one = hole_mse01(last, images.cpu(), missing)
        print(f"{shape}: hole MSE, last two rounds {two.tolist()} against the last round {one.tolist()}")
        assert float(two.mean()) < 0.9 * float(one.mean())


def test_the_answer_after_a_round_is_the_shorter_schedules_answer(dcgan, faces64):
    """`images(after_round=r)` of one solve is bit-identical to solving the schedule cut to rounds 0..r
    (the mean of the starts with fill detail, as `images()`), and differs from the full answer."""
    problem = _eyes_problem(faces64)
    config = default_config(dcgan, "inpaint", steps=[4, 4, 4, 4])
    assert config.estimate.starts > 1 and config.estimate.fill_detail > 0
    job = solve(dcgan, problem.operator, problem.observation, config)
    short = replace(config, steps=(4, 4), radii={g: list(v[:2]) for g, v in config.radii.items()})
    shorter = solve(dcgan, problem.operator, problem.observation, short)
    assert torch.equal(job.images(after_round=1), shorter.images())
    assert torch.equal(job.images(after_round=3), job.images())
    assert not torch.equal(job.images(after_round=1), job.images())


def test_a_stopped_mean_keeps_every_image_and_a_rerun_is_bit_identical(dcgan, faces64):
    problem = _eyes_problem(faces64)
    config = default_config(dcgan, "inpaint", steps=[4, 4, 4, 4])
    stopped = Solve(dcgan, problem.operator, problem.observation, config)
    run = stopped.run()
    for i, _ in enumerate(run):
        if i == 6:
            break
    run.close()
    assert all(b is not None and b.round_index == 1 for b in stopped.best)
    # a stop in round 1 answers the starts' best so far with their best of round 0 (mean_rounds = 2)
    rows = torch.cat([torch.cat([b.image for b in stopped.solver.best]).view(2, -1, 3, 64, 64),
                      torch.cat([b.image for b in stopped.solver.best_after_round[0]]).view(2, -1, 3, 64, 64)], 1)
    assert stopped.best[0].state["features"].shape[0] == 2 * DCGAN_FILL_STARTS
    missing = inpainting_mask("eyes", 64)[None, None]
    expected = torch.cat([with_detail(r, missing, config.estimate.fill_detail) for r in rows])
    assert torch.allclose(stopped.images().cpu(), expected, atol=1e-5)
    full = solve(dcgan, problem.operator, problem.observation, config)
    for _ in full.rerun_from(2, config):
        pass
    assert torch.equal(full.images(), solve(dcgan, problem.operator, problem.observation, config).images())
    with pytest.raises(ValueError, match=f"made of {DCGAN_FILL_STARTS} start"):
        next(full.rerun_from(2, default_config(dcgan, "inpaint", steps=[4, 4, 4, 4], starts=2)))


def test_the_mean_of_the_starts_fills_the_eyes_better_than_one_start(dcgan, faces64):
    """On both example faces (an eyes box, the default 4 x 50 steps): averaging the starts'
    guesses of the missing pixels lowers the hole's error well below a start's on average,
    as the starts fill the hole differently (equal fills would give no gain)."""
    problem = _eyes_problem(faces64)
    job = solve(dcgan, problem.operator, problem.observation, default_config(dcgan, "inpaint"))
    missing = inpainting_mask("eyes", 64)
    starts = job.solver.best_image()
    start_err = hole_mse01(starts, problem.clean.cpu().repeat_interleave(DCGAN_FILL_STARTS, 0), missing).view(2, -1)
    mean_err = hole_mse01(job.images().cpu(), problem.clean.cpu(), missing)
    print(f"hole MSE, mean of {DCGAN_FILL_STARTS} {mean_err.tolist()} against each start {start_err.tolist()}")
    assert bool((mean_err < 0.85 * start_err.mean(dim=1)).all())


def test_auto_radii_choose_once_per_image_for_the_mean_of_its_starts(dcgan, faces64):
    """ilo-auto with several starts scores its candidates on the mean of each image's starts:
    one choice per image serves all its starts, and each start's answer comes from that choice
    (with the default mean_rounds = 2, averaged with its best iterate of the round before)."""
    problem = _eyes_problem(faces64)
    config = default_config(dcgan, "inpaint", "ilo-auto", steps=[4, 4, 4, 4], preview_every=10**6, starts=2,
                            fill_detail=0.0)
    job = solve(dcgan, problem.operator, problem.observation, config)
    rows = job.auto.choices
    assert len(rows) == 4 and len(job.choices) == 2
    assert rows[0] is rows[1] and rows[2] is rows[3]      # one choice per image, for both its starts
    for b, choice in enumerate(job.choices):
        assert "the mean of 2 starts" in job.describe_choice(b)
        starts = job.solver.best[2 * b:2 * b + 2]
        assert all(s is not None and 1 <= s.round_index < choice.rounds for s in starts)
        before = [job.solver.best_after_round[s.round_index - 1][2 * b + i] for i, s in enumerate(starts)]
        assert all(e.round_index < s.round_index for e, s in zip(before, starts))
        assert torch.allclose(job.images()[b].cpu(), torch.cat([s.image for s in starts + before]).mean(0), atol=1e-6)
    with pytest.raises(ValueError, match="cannot be 2 starts"):
        AutoSolve(dcgan, problem.operator, problem.observation[:1].repeat(3, 1, 1, 1),
                  default_config(dcgan, "inpaint", "ilo-auto", starts=1), estimate=Estimate(starts=2))


def test_the_page_estimate_counts_a_holes_starts_and_the_auto_candidates(dcgan):
    from ilo_core.engine.auto import work_steps
    from ilo_core.frontends.page import run_estimate

    cost = {1: 0.010, DCGAN_FILL_STARTS: 0.025}   # seconds per step by batch size
    plain = run_estimate(dcgan, "super-resolution", "ilo", [50, 50, 50, 50], cost)
    assert "About **2 s** for 200 steps" in plain and "starts" not in plain
    hole = run_estimate(dcgan, "inpaint", "ilo", [50, 50, 50, 50], cost)
    assert "About **5 s**" in hole and f"the mean of {DCGAN_FILL_STARTS} starts" in hole
    assert "starts" not in run_estimate(dcgan, "inpaint", "csgm-mse", [50, 50, 50, 50], cost)
    auto = run_estimate(dcgan, "inpaint", "ilo-auto", [50, 50, 0, 50], cost)   # a 0 ends the schedule
    assert f"Up to **{work_steps([50, 50]) * 0.025:.0f} s** for 100 steps" in auto and "candidates" in auto
    both = run_estimate(dcgan, "inpaint", "compare", [50, 50, 50, 50], cost)  # ILO's starts, then CSGM-MSE
    assert "About **7 s** for both" in both and f"the mean of {DCGAN_FILL_STARTS} starts" in both


def test_fill_detail_sharpens_only_the_hole_and_re_renders_from_its_file(dcgan, faces64, tmp_path):
    """Fill detail (`SolverConfig.fill_detail`) changes no start: the answer is the plain mean
    plus the medoid start's high frequencies inside the hole, nothing outside it, and its file
    re-renders it."""
    problem = _eyes_problem(faces64)
    plain_config = default_config(dcgan, "inpaint", steps=[4, 4, 4, 4], preview_every=3, fill_detail=0.0)
    plain = solve(dcgan, problem.operator, problem.observation, plain_config)
    job = Solve(dcgan, problem.operator, problem.observation, replace(plain_config, estimate=replace(plain_config.estimate, fill_detail=1.0)))
    previews = [e.image for e in job.run() if e.image is not None]
    assert torch.equal(job.solver.best_image(), plain.solver.best_image())  # the starts are the same
    missing = inpainting_mask("eyes", 64)
    added = (job.images() - plain.images()).cpu()
    assert torch.equal(added[..., ~missing], torch.zeros_like(added[..., ~missing]))  # nothing outside the hole
    rows = torch.cat([torch.cat([b.image for b in plain.solver.best_after_round[r]]).view(2, -1, 3, 64, 64)
                      for r in (3, 2)], 1)  # the answer's iterates: the starts' last two rounds'
    for b in range(2):
        pick = medoid(rows[b].clamp(-1, 1))
        expected = (pick - gaussian_blur(pick, 1.0)) * missing
        assert torch.allclose(added[b:b + 1], expected, atol=1e-5)
    # sharper: more energy above the blur's cut-off inside the hole than the plain mean has
    def fine(x):
        return (x - gaussian_blur(x, 1.0))[..., missing].square().mean()
    assert fine(job.images().cpu()) > 1.5 * fine(plain.images().cpu())
    assert torch.allclose(previews[-1], job.images().cpu(), atol=1e-5)  # the live preview shows it too
    best = job.best[0]
    best.save(tmp_path / "detail.safetensors")
    again = Reconstruction.load(tmp_path / "detail.safetensors")
    assert again.config["estimate"]["fill_detail"] == 1.0
    assert torch.allclose(again.render(dcgan).cpu(), best.image, atol=1e-5)


def test_fill_detail_is_refused_where_there_is_no_hole_and_out_of_range(dcgan):
    with pytest.raises(ValueError, match="from 0 to 8"):
        SolverConfig(estimate=Estimate(fill_detail=-1.0)).validate()
    with pytest.raises(ValueError, match="from 0 to 8"):
        SolverConfig(estimate=Estimate(fill_detail=float("nan"))).validate()
    faces = torch.zeros(1, 3, 64, 64)
    problem = simulate("super-resolution", faces, factor=4)
    with pytest.raises(ValueError, match="needs an inpainting task"):
        Solve(dcgan, problem.operator, problem.observation, default_config(dcgan, "super-resolution", fill_detail=1.0))


def test_gaussian_blur_keeps_constants_and_the_medoid_is_the_start_nearest_the_mean():
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(flat, 1.2), flat, atol=1e-6)
    starts = torch.stack([torch.full((3, 8, 8), v) for v in (-0.5, 0.1, 0.6)])  # mean 0.0667
    assert torch.equal(medoid(starts), starts[1:2])


def test_a_config_saved_before_the_estimate_had_its_own_record_still_reads():
    """Result files written before issue 29 carry the estimate's fields flat in their config."""
    old = SolverConfig(steps=(4, 4, 4, 4)).to_dict()
    del old["estimate"]
    old.update(mean_of=6, mean_rounds=2, fill_detail=0.7, restarts=1)
    config = SolverConfig.from_dict(old).validate()
    assert config.estimate == Estimate(starts=6, rounds_averaged=2, fill_detail=0.7, best_of=1)
    assert SolverConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown estimate fields"):
        SolverConfig.from_dict({**config.to_dict(), "estimate": {"starts": 2, "blend": 1}})


def test_an_old_result_file_with_the_flat_names_loads_and_re_renders(dcgan, faces64, tmp_path):
    problem = _eyes_problem(faces64, 1)
    job = solve(dcgan, problem.operator, problem.observation, default_config(dcgan, "inpaint", steps=[2, 2, 2, 2]))
    best = job.best[0]
    estimate = best.config.pop("estimate")
    best.config.update(mean_of=estimate["starts"], mean_rounds=estimate["rounds_averaged"],
                       fill_detail=estimate["fill_detail"])  # as such files were written
    best.save(tmp_path / "old.safetensors")
    again = Reconstruction.load(tmp_path / "old.safetensors")
    assert again.config["mean_of"] == DCGAN_FILL_STARTS
    assert (again.render(dcgan).cpu() - best.image.cpu()).abs().max() < 1e-5
