"""l1-ball projection, spherical projection, geodesic loss and offline LPIPS."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REFERENCE
from ilo_core.engine.constraints import project_l1_ball, project_sphere
from ilo_core.engine.losses import geodesic_loss
from ilo_core.perceptual.distance import PerceptualDistance


def bisection_projection(v: torch.Tensor, radius: float) -> torch.Tensor:
    """Independent reference: find the soft threshold by bisection (float64)."""
    v = v.double()
    if v.abs().sum() <= radius:
        return v
    lo, hi = 0.0, float(v.abs().max())
    for _ in range(200):
        mid = (lo + hi) / 2
        if (v.abs() - mid).clamp_min(0).sum() > radius:
            lo = mid
        else:
            hi = mid
    return v.sign() * (v.abs() - hi).clamp_min(0)


@pytest.mark.parametrize("radius", [0.5, 5.0, 50.0])
def test_l1_projection_agrees_with_bisection_to_1e6(radius):
    x = torch.randn(4, 3, 7, 5, generator=torch.Generator().manual_seed(0)).double()
    p = project_l1_ball(x, radius)
    for b in range(4):
        assert (p[b] - bisection_projection(x[b].flatten(), radius).view_as(p[b])).abs().max() < 1e-6


def test_l1_projection_lands_in_the_ball_and_is_idempotent():
    x = torch.randn(3, 500)
    p = project_l1_ball(x, 10.0)
    assert torch.all(p.abs().sum(1) <= 10.0 + 1e-3)
    assert torch.allclose(project_l1_ball(p, 10.0), p, atol=1e-5)


def test_points_inside_the_l1_ball_are_unchanged():
    x = torch.randn(2, 100) * 0.01
    assert torch.equal(project_l1_ball(x, 100.0), x)


def test_l1_projection_handles_a_batch_with_items_inside_and_outside():
    x = torch.stack([torch.full((10,), 0.01), torch.full((10,), 5.0)])
    p = project_l1_ball(x, 1.0)
    assert torch.equal(p[0], x[0])
    assert abs(float(p[1].abs().sum()) - 1.0) < 1e-5


def test_negative_radius_is_refused():
    with pytest.raises(ValueError):
        project_l1_ball(torch.ones(1, 3), -1.0)


def test_spherical_projection_sets_row_norms():
    x = torch.randn(2, 10, 512)
    target = torch.full((2, 10, 1), 512 ** 0.5)
    assert torch.allclose(project_sphere(x, target).norm(dim=-1), target[..., 0], atol=1e-4)


def test_geodesic_loss_is_zero_for_equal_rows_and_has_finite_gradients():
    rows = torch.randn(1, 1, 16).repeat(2, 5, 1).requires_grad_(True)
    loss = geodesic_loss(rows)
    assert torch.allclose(loss, torch.zeros(2), atol=1e-6)
    loss.sum().backward()
    assert torch.isfinite(rows.grad).all()


def test_geodesic_loss_grows_with_spread():
    base = torch.randn(1, 1, 16).repeat(1, 4, 1)
    near = geodesic_loss(base + 0.01 * torch.randn(1, 4, 16))
    far = geodesic_loss(torch.randn(1, 4, 16))
    assert far > near > 0


def _lpips_image(name: str) -> torch.Tensor:
    a = np.asarray(Image.open(REFERENCE / "lpips" / f"{name}.png").convert("RGB"), dtype=np.float32)
    return torch.from_numpy(a.copy()).permute(2, 0, 1)[None] / 127.5 - 1


@pytest.mark.parametrize("net, p0, p1", [("alex", 0.722, 0.138), ("vgg", 0.569, 0.422)])
def test_offline_lpips_reproduces_the_published_distances_to_3_decimals(net, p0, p1):
    dist = PerceptualDistance(net, size=None)
    ref, img0, img1 = (_lpips_image(n) for n in ("ex_ref", "ex_p0", "ex_p1"))
    assert round(float(dist(ref, img0)), 3) == p0
    assert round(float(dist(ref, img1)), 3) == p1
