"""A cut face's hole solved as cut against solved in the generator's frame: the measurement
behind the CLI's default for an image already at the generator's size (`ilo_core.photo.framing`).

    python -m ilo_core.evaluation.studies frame_match [--images DIR] [--seeds 2] [--align box] [--methods ilo,csgm-mse]

Every painted mask of the evaluation (box, eyes, strokes, right half) on every face, cut at
64 px by `--align` (default box: the face detector's box enlarged 1.5x, a crop framed otherwise
than the DCGAN's faces): ILO's default solve of the crop as cut (the evaluation's), the same
solve in the generator's frame (`frame_in_image` on the crop, the crop and mask warped there,
the answer warped back into the crop's own pixels, as `python -m ilo_core solve` does), and
OpenCV's Telea; `--methods ilo,csgm-mse` adds CSGM-MSE both ways (the CLI frames every
method's solve alike). Hole PSNR dB / hole LPIPS against the crop. Faces where dlib finds no face, or
whose frame is already the generator's, keep the as-cut answer in both rows.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ilo_core.engine.methods import solve
from ilo_core.evaluation.grid_definition import Setting, classical_inpaint, inpainting_mask, method_config
from ilo_core.evaluation.studies.hole_bench import MASKS, add_image_arguments, print_table, set_up
from ilo_core.photo.framing import answer_in_image, frame_in_image, framed_inpainting
from ilo_core.photo.images import tensor_to_uint8
from ilo_core.physics.problems import simulate


LABELS = {"ilo": "ILO", "csgm-mse": "CSGM-MSE"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_image_arguments(parser)
    parser.add_argument("--methods", default="ilo", help="comma-separated: ilo, csgm-mse")
    parser.set_defaults(align="box")
    args = parser.parse_args()
    bench = set_up(args)
    g, clean, size = bench.generator, bench.clean, bench.generator.resolution
    methods = args.methods.split(",")
    if not set(methods) <= set(LABELS):
        raise SystemExit(f"--methods: choose from {', '.join(LABELS)}")
    frames = [frame_in_image(tensor_to_uint8(image), g.face_frame) for image in clean]
    sides = [f"{f.side / size:.2f}" for f in frames if f is not None]
    print(f"in the generator's frame: {len(sides)} of {len(frames)} faces (square / image side: {', '.join(sides)})",
          file=sys.stderr)
    kinds = [im.kind for im in bench.images]
    scores: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    as_cut_seconds = framed_seconds = 0.0
    for shape in MASKS:
        setting = Setting("inpaint", shape, 0.0, {"mask": inpainting_mask(shape, size)})
        missing = setting.params["mask"]
        for seed in range(args.seeds):
            problem = simulate("inpaint", clean, seed=seed, **setting.params)
            keep = problem.operator.keep
            fills = {}
            for method in methods:
                t0 = time.perf_counter()
                as_cut = solve(g, problem.operator, problem.observation, method_config(g, setting, method, 50, None, seed)).images()
                as_cut_seconds += time.perf_counter() - t0
                framed = as_cut.clone()
                t0 = time.perf_counter()
                for i, alignment in enumerate(frames):
                    if alignment is None:
                        continue
                    operator, observation = framed_inpainting(tensor_to_uint8(clean[i]), missing.numpy(), alignment, size)
                    answer = solve(g, operator, observation, method_config(g, setting, method, 50, None, seed)).images()
                    framed[i:i + 1] = answer_in_image(answer, alignment, problem.observation[i:i + 1], keep)
                framed_seconds += time.perf_counter() - t0
                fills[f"{LABELS[method]} as cut"] = as_cut
                fills[f"{LABELS[method]} in the generator's frame"] = framed
            fills["Telea"] = classical_inpaint(problem, "telea")
            for name, fill in fills.items():
                for kind, score in zip(kinds, bench.scores(fill, keep)):
                    scores.setdefault((kind, name, shape), []).append(score)
            print(shape, seed, {n: round(float(np.mean([p for p, _ in bench.scores(f, keep)])), 2) for n, f in fills.items()},
                  file=sys.stderr, flush=True)
    print_table(scores, kinds, list(MASKS))
    print(f"\nseconds: as cut {as_cut_seconds:.0f} (one batched solve per mask, seed and method), "
          f"in the generator's frame {framed_seconds:.0f} (one solve per face)")


if __name__ == "__main__":
    main()
