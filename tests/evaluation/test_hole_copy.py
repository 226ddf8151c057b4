"""ilo_core/evaluation/studies/auto_holes.py's hole-shaped held-out copy: where it goes, and when there is none."""

from __future__ import annotations


import pytest
import torch

from ilo_core.evaluation.grid_definition import inpainting_mask
from ilo_core.evaluation.studies.auto_holes import COPY_OBSERVED, hole_copy


def moved(hole: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    ys, xs = torch.nonzero(hole, as_tuple=True)
    out = torch.zeros_like(hole)
    out[ys + dy, xs + dx] = True  # raises if the shift left the image
    return out


@pytest.mark.parametrize("shape", ["box", "eyes", "strokes"])
def test_copy_is_the_hole_moved_onto_observed_pixels(shape: str) -> None:
    hole = inpainting_mask(shape, 64)
    found = hole_copy(hole)
    assert found is not None
    copy, (dy, dx) = found
    assert (dy, dx) != (0, 0)
    assert torch.equal(copy, moved(hole, dy, dx) & ~hole)          # only observed pixels are held out
    assert copy.sum() >= COPY_OBSERVED * hole.sum()


def test_the_shortest_shift_wins() -> None:
    hole = torch.zeros(32, 32, dtype=torch.bool)
    hole[10:14, 10:14] = True
    copy, (dy, dx) = hole_copy(hole)
    assert abs(dy) + abs(dx) == 3 and int(copy.sum()) == 12          # 3 px: 12 of 16 pixels outside (3/4)


def test_no_copy_when_the_hole_leaves_too_little_observed() -> None:
    hole = torch.zeros(32, 32, dtype=torch.bool)
    hole[:, 8:] = True                                                # 3/4 of the image missing
    assert hole_copy(hole) is None
