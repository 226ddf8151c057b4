"""The studies behind the defaults, registered by name and run by one command:

    python -m ilo_core.evaluation.studies            # the list
    python -m ilo_core.evaluation.studies NAME [ARGS]

Each study is a module here with a `main()` that reads its own command line; docs/tuning.md says which tuned value each
one decided. NVlabs' `calc_metrics.py` with its `@register_metric` registry is the model.
"""

from __future__ import annotations

import importlib
import sys

STUDIES = {
    "fill_starts": "holes: the number of averaged starts (Tuning.fill_starts)",
    "fill_detail": "holes: the fill detail put back (Tuning.fill_detail)",
    "mean_rounds": "holes and sparse pixels: the rounds each start adds (Tuning.fill_rounds)",
    "random_pixels": "random pixels: variants of the default's estimate",
    "auto_holes": "ilo-auto on holes: a hole-shaped held-out copy",
    "frame_match": "a cut face's hole solved in the generator's frame",
    "face_frame": "where a generator draws its faces (SplitGenerator.face_frame)",
    "sna_ablation": "denoising with and without stochastic noise addition",
    "held_out_faces": "the held-out faces nobody tuned on: fetch, cut and check them",
    "video_flicker": "clips: warm-started frames against frames solved on their own (WarmStart)",
    "sequence_costs": "folders and clips: seconds per frame, photos per minute, peak memory",
    "cluster_costs": "the grid's cells on Ray: overhead per cell, cells per minute with 1 and 2 workers",
}


def run(name: str, argv: list[str] | None = None) -> int:
    """Run the study `name` with its own command-line arguments; returns its exit status."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; choose one of {', '.join(STUDIES)}")
    module = importlib.import_module(f"ilo_core.evaluation.studies.{name}")
    sys.argv = [f"python -m ilo_core.evaluation.studies {name}", *(argv or [])]
    return module.main() or 0


def command(argv: list[str] | None = None) -> int:
    """`ilo-study [NAME [ARGS]]` (and `python -m ilo_core.evaluation.studies`): list the studies, or run one."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "list"):
        for name, about in STUDIES.items():
            print(f"{name:15s} {about}")
        return 0
    if argv[0] not in STUDIES:
        print(f"error: unknown study {argv[0]!r}; choose one of {', '.join(STUDIES)}", file=sys.stderr)
        return 2
    return run(argv[0], argv[1:])
