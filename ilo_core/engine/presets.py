"""Default solver settings per generator, task and method; they work without tuning.

Paper values (appendix 7.3) for StyleGAN-2: Adam lr 0.1, 50 steps on each of the first
four layers, geodesic weight 0.01, l1 radii per round (rounds 1-3; round 0 is CSGM and
unconstrained): noises 300, 2000, 2000; latents 300, 500, 1000; state 500, 1000, 2000.
LPIPS (VGG) joins MSE except for compressed sensing and for random inpainting with
fewer than 20 % observed pixels.

The DCGAN (64 px) defaults were tuned on real face photos with `python -m ilo_core.evaluation.evaluate`
(true MSE, equal step budgets): state radii 300 / 600 / 1200 (scaled to its much smaller
feature maps; 0.5x and 2-3x were no better), and no LPIPS: at 64 px, AlexNet-LPIPS
raised the true MSE of ILO by 1.2-2x on every task with an image view (random
inpainting at 25-50 %, box and painted masks, denoising).

Holes and random pixels on the DCGAN are solved from DCGAN_FILL_STARTS = 6 random starts
per image as one batch and the answer is their mean (`SolverConfig.mean_of`,
`ilo_core.engine.methods`): each start fills the missing pixels with a different plausible guess,
and their mean has the lower expected error. Measured (`scripts/fill_starts.py --starts 8`,
64 px, 4 x 50 steps, 2 observation seeds), hole PSNR over box / eyes / strokes for the mean of
1 / 4 / 6 / 8 starts, Telea beside: 2 example faces 15.51 / 16.73 / 16.86 / 16.97 dB (Telea
15.32), 4 real faces not used for the choice 16.33 / 17.79 / 18.04 / 18.08 (Telea 16.40); the
right half 10.54 / 11.90 / 12.06 / 11.97 and 11.94 / 13.69 / 13.61 / 13.38 (Telea 10.75,
11.46). The mean blurs where the starts disagree: hole LPIPS 0.044 / 0.046 / 0.048 and
0.045 / 0.046 / 0.047 for 4 / 6 / 8 (the example faces' half 0.165 / 0.173 / 0.187). Six is
the fewest that clear Telea by 1.5 dB on the example faces (the unseen faces agree), at
1.3-1.4x the seconds per step of 4 on a CPU; 8 cost 2x for 0.1 dB more and a blurrier
fill. Earlier, one start with three rounds (67, 67, 66 steps) filled 15.27 and 16.54 dB;
with several starts four rounds fill better than three, so holes keep the default four
rounds. The CSGM baselines keep one start. Random inpainting at 5 %:
the mean's true MSE is 1.2-1.5x lower than one start's.

Painted holes on the DCGAN keep in range the cells of its coarse state maps (8 x 8 px cells
or larger: the 4 x 4 and 8 x 8 maps of rounds 1 and 2) that lie wholly inside the hole
(DCGAN_HOLE_BLOCK, `SolverConfig.hole_block`): fitting the hole's border moved those cells
and painted coloured blotches into the box (round 2's box LPIPS jumped from 0.042 to 0.061).
Measured with 6 starts, 4 x 50 steps, 2 seeds (hole PSNR dB / LPIPS of the mean, box): 2
example faces 16.69 / 0.055 -> 16.75 / 0.046 (one start 15.47 / 0.045 -> 15.55 / 0.034), 4
real faces not used for the choice 16.75 / 0.050 -> 16.96 / 0.044; the eyes box and strokes
have no such cell (unchanged), the right half -0.03 to +0.02 dB. Freezing the 4 px cells of the
16 x 16 map too cost the eyes box (-0.24 / -0.43 dB) and was dropped.

ILO's state on the DCGAN stays >= 0 (`SolverConfig.relu_range`, ILO and ilo-auto, every task):
each of its state maps is a ReLU's output, so G_before never produces a negative entry, but
the l1 ball alone let a round reach them. Against ILO without it ("ilo-signed" in
`python -m ilo_core.evaluation.evaluate`): painted holes' PSNR (mean of 6 starts, 3 seeds) +0.29 dB on the
example faces (box / eyes / strokes 16.93 / 16.19 / 17.97 -> 17.14 / 16.42 / 18.40), +0.24 dB
on 4 real faces not used for the choice (2 seeds), -0.08 dB on 2 generator samples; the other
tasks' 17 settings (2 seeds), whole-image true MSE 0.91-1.02x on the example faces (15 lower,
geometric mean 0.97x) and 0.93-1.07x on the samples (10 lower, 0.98x).

Painted holes get DCGAN_FILL_DETAIL = 0.7 px of fill detail (`SolverConfig.fill_detail`,
`ilo_core.engine.detail`: the fine detail of the start nearest the mean put back into the averaged
hole). With the state kept >= 0 there is PSNR to spare for it: the small holes clear Telea by
+1.69 dB (example faces) and +1.60 dB (unseen faces) with it, and the hole LPIPS drops below
CSGM-MSE's (example faces' box 0.045 -> 0.037 against 0.042). Random pixels keep the plain
mean (not measured with detail).

In painted holes and in random pixels with fewer than MEAN_ROUNDS_OBSERVED_BELOW = 20 % observed
on the DCGAN, each start adds to the mean its best iterates of its last DCGAN_MEAN_ROUNDS = 2
rounds (`SolverConfig.mean_rounds`): the last round (the 16 x 16 map) fits the hole's border
closely, the one before (8 x 8) keeps more of the generator's own face, and their errors differ.
It costs nothing (round 2 ran anyway). Chosen on the 2 example faces and 2 generator samples (2
seeds, one-off script on the default's cached iterates, 0.7 px detail from the medoid of all
12): small holes' PSNR over Telea +1.64 -> +1.74 dB (faces) and +5.03 -> +5.89 dB (samples), the
hole LPIPS level or lower (faces' box 0.035 -> 0.036, eyes 0.043 -> 0.041); weights of 0.25 /
0.4 / 0.5 / 0.6 on round 2 were flat on the faces (17.35 / 17.35 / 17.33 / 17.30 dB without
detail) and rose on the samples (25.09 -> 25.35), so the plain mean of the two; the last three
rounds were worse on the faces (17.23). Random pixels, whole-image true MSE of the two rounds'
mean over the last round's (same images, 2-3 seeds): 1 % 0.991x / 0.999x (faces / samples), 5 %
1.001x / 0.942x, 10 % 0.981x / 0.946x, 25 % 1.019x / 0.967x, 50 % 1.203x / 1.183x: where most
pixels are observed the last round's closer fit to them outweighs the guess, so random pixels
average two rounds only below MEAN_ROUNDS_OBSERVED_BELOW = 20 % observed. (The holes' whole
image without pasting is 1.09-1.16x worse on the faces, the observed pixels fitted less closely;
the page and CLI change only the painted region of a photo, where the hole is what counts.)
Checked on 11 real faces nobody tuned on (`scripts/held_out_faces.py`, the page's crop, 8 seeds
on an H200): small holes +1.27 -> +1.72 dB over Telea, hole LPIPS below Telea's and CSGM-MSE's
on every mask, random pixels at 5 % 2.23x -> 2.28x the best CSGM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ilo_core.physics.operators import TASKS

if TYPE_CHECKING:  # config.py takes its defaults from here
    from ilo_core.engine.config import SolverConfig
    from ilo_core.generators.base import SplitGenerator

# the one home of every default the page, the CLI, the evaluation and SolverConfig use
# what the solver runs (CSGM: round 0 only; ilo-auto: ILO choosing its radii and rounds, `ilo_core.engine.auto`)
METHODS = ("ilo", "csgm-mse", "csgm-lpips", "csgm-mse-lpips", "ilo-auto")
ILO_METHODS = ("ilo", "ilo-auto")  # the methods that run ILO's rounds (the rest are CSGM: round 0 only)
ROUNDS = 4                  # ILO rounds (the paper: the first four layers), fewer on a shallower generator
STEPS_PER_ROUND = 50        # Adam steps per round (paper appendix 7.3)
LEARNING_RATE = 0.1         # Adam's base learning rate (ramp-up, cosine ramp-down)
MSE_WEIGHT = 1.0
STYLEGAN_GEODESIC_WEIGHT = 0.01  # geocross on the active latent rows (StyleGAN-2; the DCGAN has one latent)
DCGAN_FILL_STARTS = 6       # painted holes and random pixels on the DCGAN: the mean of 6 starts (see above)
DCGAN_HOLE_BLOCK = 8        # px: painted holes on the DCGAN keep the state cells of 8 px or more wholly inside
                            # the hole in range (`SolverConfig.hole_block`, see above)
DCGAN_FILL_DETAIL = 0.7     # px: painted holes on the DCGAN get the fine detail of the start nearest the
                            # mean back (`SolverConfig.fill_detail`, see above)
DCGAN_MEAN_ROUNDS = 2       # painted holes, and random pixels with fewer than MEAN_ROUNDS_OBSERVED_BELOW
                            # observed, on the DCGAN: each start adds its best iterates of its last two
MEAN_ROUNDS_OBSERVED_BELOW = 0.2  # rounds (`SolverConfig.mean_rounds`, see above)
FILL_TASKS = ("inpaint", "random-inpaint")

STYLEGAN_RADII = {
    "latents": [None, 300.0, 500.0, 1000.0],
    "noises": [None, 300.0, 2000.0, 2000.0],
    "state": [None, 500.0, 1000.0, 2000.0],
}
DCGAN_RADII = {
    "latents": [None, None, None, None],
    "state": [None, 300.0, 600.0, 1200.0],
}


def default_rounds(generator: "SplitGenerator") -> int:
    """ILO's number of rounds on this generator: ROUNDS, or its number of layers if fewer."""
    return min(ROUNDS, generator.num_layers)


def default_steps(generator: "SplitGenerator", per_round: int = STEPS_PER_ROUND) -> list[int]:
    """Steps per round of the default ILO schedule (every task's): `per_round` on each of
    `default_rounds` rounds."""
    return [per_round] * default_rounds(generator)


def default_mean_of(generator: "SplitGenerator", task: str, method: str = "ilo") -> int:
    """Random starts whose mean image is the answer: DCGAN_FILL_STARTS for ILO and ilo-auto on
    holes and random pixels on the DCGAN (see the module notes), else 1 (the CSGM baselines)."""
    fill = generator.kind == "dcgan" and task in FILL_TASKS and method in ILO_METHODS
    return DCGAN_FILL_STARTS if fill else 1


def default_mean_rounds(generator: "SplitGenerator", task: str, method: str = "ilo",
                        observed: float | None = None) -> int:
    """DCGAN_MEAN_ROUNDS where the answer is the mean of several starts (`default_mean_of` > 1) and
    the guess dominates its error: painted holes, and random pixels with fewer than
    MEAN_ROUNDS_OBSERVED_BELOW observed (more, and the last round's closer fit to them wins);
    else 1 (each start's best iterate only)."""
    if default_mean_of(generator, task, method) == 1:
        return 1
    if task == "random-inpaint" and (observed is None or observed >= MEAN_ROUNDS_OBSERVED_BELOW):
        return 1
    return DCGAN_MEAN_ROUNDS


def default_hole_block(generator: "SplitGenerator", task: str, method: str = "ilo") -> int:
    """DCGAN_HOLE_BLOCK for ILO and ilo-auto on painted holes on the DCGAN, else 0 (off)."""
    hole = generator.kind == "dcgan" and task == "inpaint" and method in ILO_METHODS
    return DCGAN_HOLE_BLOCK if hole else 0


def default_fill_detail(generator: "SplitGenerator", task: str, method: str = "ilo") -> float:
    """DCGAN_FILL_DETAIL where the answer is the mean of several starts on a painted hole (ILO and
    ilo-auto on the DCGAN), else 0 (the plain mean, or one start)."""
    return DCGAN_FILL_DETAIL if default_hole_block(generator, task, method) and \
        default_mean_of(generator, task, method) > 1 else 0.0


def default_relu_range(generator: "SplitGenerator", method: str = "ilo") -> bool:
    """True for ILO and ilo-auto on a generator whose state maps follow a ReLU (the DCGAN)."""
    return bool(generator.nonnegative_state) and method in ILO_METHODS


def default_geodesic_weight(generator: "SplitGenerator") -> float:
    return STYLEGAN_GEODESIC_WEIGHT if generator.kind == "stylegan2" else 0.0


def default_config(generator: "SplitGenerator", task: str, method: str = "ilo", *,
                   observed: float | None = None, steps: list[int] | None = None, **overrides) -> "SolverConfig":
    """The recommended `SolverConfig` for a generator, a task name and a method.

    CSGM baselines run the same solver restricted to round 0 with the same total number
    of steps as the ILO default (or as `steps`).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    from ilo_core.engine.config import SolverConfig

    stylegan = generator.kind == "stylegan2"
    ilo_steps = list(steps) if steps is not None else default_steps(generator)
    radii_table = STYLEGAN_RADII if stylegan else DCGAN_RADII
    kwargs: dict = dict(
        lr=LEARNING_RATE,
        lpips_net="vgg" if stylegan else "alex",
        lpips_size=256,
        geodesic_weight=default_geodesic_weight(generator),
        mse_weight=MSE_WEIGHT,
        lpips_weight=default_lpips_weight(generator, task, observed),
        sna=task == "denoise",
    )
    if method in ILO_METHODS:
        n = len(ilo_steps)
        kwargs["steps"] = tuple(ilo_steps)
        kwargs["radii"] = {g: _fit(v, n) for g, v in radii_table.items()}
    else:
        kwargs["steps"] = (sum(ilo_steps),)
        kwargs["radii"] = {}
        if method == "csgm-mse":
            kwargs["lpips_weight"] = 0.0
        elif method == "csgm-lpips":
            kwargs["mse_weight"], kwargs["lpips_weight"] = 0.0, 1.0
        else:
            kwargs["lpips_weight"] = 1.0
        if method != "csgm-mse" and task == "compressed-sensing":
            raise ValueError("compressed sensing measurements have no image view: use csgm-mse")
    kwargs["method"] = method
    kwargs["mean_of"] = default_mean_of(generator, task, method)
    kwargs["mean_rounds"] = default_mean_rounds(generator, task, method, observed)
    kwargs["hole_block"] = default_hole_block(generator, task, method)
    kwargs["relu_range"] = default_relu_range(generator, method)
    kwargs["fill_detail"] = default_fill_detail(generator, task, method)
    kwargs.update(overrides)
    return SolverConfig(**kwargs)


def default_lpips_weight(generator: "SplitGenerator", task: str, observed: float | None = None) -> float:
    """The LPIPS weight of ILO for a task: 0 where it does not help (see the module notes)."""
    if generator.kind != "stylegan2" or task == "compressed-sensing":
        return 0.0
    if task == "random-inpaint" and (observed or 0) < 0.2:
        return 0.0
    return 1.0


def _fit(values: list, n: int) -> list:
    """Per-round list of length n: truncated, or extended by doubling the last radius."""
    out = list(values[:n])
    while len(out) < n:
        last = out[-1]
        out.append(None if last is None else 2 * last)
    return out
