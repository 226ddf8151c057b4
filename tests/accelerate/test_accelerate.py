"""`ilo_core.accelerate`: every fast form gives the plain model's results (within 1e-4), is
checked when it is built, and one switch turns all of them off."""

from __future__ import annotations

import copy
import resource
import sys
import threading

import pytest
import torch

from lpips_oracle import reference_lpips
from ilo_core.accelerate import accelerate, reference_requested
from ilo_core.accelerate.dcgan import FoldedStage
from ilo_core.accelerate.lpips import AcceleratedLPIPS, _NormalizedFeatureDistance
from ilo_core.accelerate.memory import keep_freed_memory
from ilo_core.accelerate.packed_conv import PackedConvolution, flop_formulas, packing_available
from ilo_core.accelerate.packed_trunk import PackedTrunk
from ilo_core.accelerate.resize import MATRIX_MAX_LOW_RES, MatrixSuperResolution
from ilo_core.accelerate.stylegan2 import ScaledModulatedConv2d
from ilo_core.checkpoints import load_generator
from ilo_core.engine.config import SolverConfig
from ilo_core.engine.solver import ILOSolver
from ilo_core.generators.stylegan2 import ModulatedConv2d
from ilo_core.perceptual.distance import PerceptualDistance, get_lpips
from ilo_core.perceptual.network import LPIPSNetwork, unit_normalize
from ilo_core.physics.operators import Denoising, SuperResolution, bicubic_downsample
from ilo_core.physics.problems import build_operator


def _render_and_grads(gen, variables, split):
    state = gen.state_at(split, variables) if split else {}
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in (state.items() if split else variables.items())}
    s = {**state, **leaves} if split else {}
    vv = variables if split else {**variables, **leaves}
    image = gen.render_from(split, s, vv)
    (image * torch.linspace(-1, 1, image.numel(), dtype=image.dtype).view_as(image)).sum().backward()
    return image.detach(), {k: v.grad for k, v in leaves.items()}


@pytest.mark.parametrize("split", [0, 2])
def test_stylegan_fast_modulation_renders_the_plain_models_image_within_1e4(stylegan64, stylegan64_plain, split):
    variables = stylegan64.sample_variables(2, torch.Generator().manual_seed(3))
    fast_img, _ = _render_and_grads(stylegan64, variables, split)
    ref_img, _ = _render_and_grads(stylegan64_plain, variables, split)
    assert (fast_img - ref_img).abs().max() < 1e-4


@pytest.mark.parametrize("split", [0, 2])
def test_stylegan_fast_modulation_is_the_same_map_with_the_same_gradients_in_float64(stylegan64_plain, split):
    """In float32 the two orders of operations differ by rounding (tiny noise-map gradients
    by up to a few %, both paths alike against float64); in float64 they must agree."""
    ref = copy.deepcopy(stylegan64_plain).double()
    fast = accelerate(copy.deepcopy(ref), reference=False)
    assert any(isinstance(m, ScaledModulatedConv2d) for m in fast.modules())
    stylegan64 = ref
    variables = {k: v.double() for k, v in stylegan64.sample_variables(2, torch.Generator().manual_seed(3)).items()}
    fast_img, fast_grads = _render_and_grads(fast, variables, split)
    ref_img, ref_grads = _render_and_grads(ref, variables, split)
    assert (fast_img - ref_img).abs().max() < 1e-10
    for k in ref_grads:
        scale = ref_grads[k].abs().max().clamp_min(1e-12)
        assert ((fast_grads[k] - ref_grads[k]).abs().max() / scale) < 1e-8, k


def test_split_lpips_equals_the_lpips_package_forward():
    a, b = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    for net in ("alex", "vgg"):
        ours = PerceptualDistance(net, size=None)(a, b)
        theirs = reference_lpips(net)(a, b, normalize=False).flatten()
        assert torch.allclose(ours, theirs, atol=1e-6), (net, ours, theirs)


def test_lpips_fused_distance_backward_is_autograds_in_float64():
    g = torch.Generator().manual_seed(0)
    shapes = [(2, 64, 15, 15), (2, 192, 7, 7), (2, 384, 3, 3), (2, 256, 3, 3), (2, 256, 3, 3)]
    feats = [torch.rand(s, generator=g, dtype=torch.float64) for s in shapes]
    targets = [unit_normalize(torch.rand(s, generator=g, dtype=torch.float64)) for s in shapes]
    weights = [torch.rand(s[1], generator=g, dtype=torch.float64) for s in shapes]
    upstream = torch.tensor([1.0, -0.5], dtype=torch.float64)
    grads = []
    for fused in (True, False):
        leaves = [f.clone().requires_grad_(True) for f in feats]
        if fused:
            value = _NormalizedFeatureDistance.apply(weights, targets, *leaves)
        else:
            value = sum((unit_normalize(f) - t).square().mean((2, 3)) @ w for f, t, w in zip(leaves, targets, weights))
        (value @ upstream).backward()
        grads.append((value.detach(), [leaf.grad for leaf in leaves]))
    assert torch.allclose(grads[0][0], grads[1][0], rtol=1e-12)
    for a, b in zip(grads[0][1], grads[1][1]):
        assert (a - b).abs().max() <= 1e-10 * b.abs().max()


def test_lpips_distance_to_fixed_features_has_the_lpips_package_gradient():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1, torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    weights = torch.tensor([1.0, -0.5])  # a non-uniform upstream gradient per item
    for net in ("alex", "vgg"):
        ours_a = a.clone().requires_grad_(True)
        dist = PerceptualDistance(net, size=None)
        with torch.no_grad():
            fb = dist.features(b)
        (dist.distance_to(ours_a, fb) @ weights).backward()
        theirs_a = a.clone().requires_grad_(True)
        (reference_lpips(net)(theirs_a, b, normalize=False).flatten() @ weights).backward()
        # as a whole: where a pixel's features are nearly all zero the gradient scales with
        # 1 / |f|, and float rounding in the two trunks moves single entries by a few %
        assert (ours_a.grad - theirs_a.grad).norm() <= 1e-4 * theirs_a.grad.norm(), net


def test_lpips_gradient_is_finite_where_a_feature_vector_is_zero():
    """A pixel whose features are all 0 (every ReLU off) gives autograd's formula 0/0."""
    dist = PerceptualDistance("alex", size=None)
    feats = [f.detach() for f in get_lpips("alex", "cpu")(torch.rand(1, 3, 64, 64) * 2 - 1)]
    feats[0][:, :, 3, 4] = 0
    leaves = [f.clone().requires_grad_(True) for f in feats]
    target = [torch.rand_like(f) for f in feats]
    _NormalizedFeatureDistance.apply(dist.weights, target, *leaves).sum().backward()
    assert all(torch.isfinite(leaf.grad).all() for leaf in leaves)
    assert leaves[0].grad[:, :, 3, 4].abs().max() == 0 and leaves[0].grad.abs().max() > 0


def _features_and_input_grad(model, x):
    x = x.clone().requires_grad_(True)
    feats = model(x)
    sum((f * torch.linspace(-1, 1, f.shape[1]).view(1, -1, 1, 1)).sum() for f in feats).backward()
    return [f.detach() for f in feats] + [x.grad]


@pytest.mark.skipif(not packing_available(), reason="this torch has no oneDNN packing ops")
@pytest.mark.parametrize("net,size", [("alex", 64), ("alex", 57), ("alex", 256), ("vgg", 64)])
def test_packed_lpips_trunk_equals_the_plain_trunk_and_its_input_gradient(net, size):
    plain = LPIPSNetwork(net)
    packed = accelerate(LPIPSNetwork(net), reference=False)
    assert isinstance(packed, AcceleratedLPIPS) and packed.trunk is not None
    assert get_lpips(net, "cpu", reference=False).trunk is not None  # what the engine uses
    for batch in (1, 2):
        x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(batch)) * 2 - 1
        for a, b in zip(_features_and_input_grad(plain, x), _features_and_input_grad(packed, x)):
            assert (a - b).abs().max() <= 1e-4 * a.abs().max()


def _conv_relu_and_input_grad(run, x):
    x = x.clone().requires_grad_(True)
    out = run(x)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), x.grad


@pytest.mark.skipif(not packing_available(), reason="this torch has no oneDNN packing ops")
@pytest.mark.parametrize("kernel,stride,padding,size", [(11, 4, 2, 64), (11, 4, 2, 61), (5, 2, 1, 20), (4, 3, 0, 17),
                                                         (2, 3, 0, 10), (3, 1, 1, 9), (5, 1, 0, 9)])
def test_packed_trunk_convolutions_strided_or_not_equal_conv2d_and_relu(kernel, stride, padding, size):
    """Strided convolutions run on the space-to-depth rearranged input (padded, or cropped
    where the stride leaves pixels unread: k=2, s=3); stride-1 ones need not pad to 'same'."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 8, kernel, stride, padding)
    shift, scale = torch.rand(1, 3, 1, 1) - 0.5, torch.rand(1, 3, 1, 1) + 0.5
    trunk = PackedTrunk.build([conv, torch.nn.ReLU()], [2], lambda: shift, lambda: scale)
    x = torch.rand(2, 3, size, size + 3) * 2 - 1
    want = _conv_relu_and_input_grad(lambda t: torch.relu(conv((t - shift) / scale)), x)
    got = _conv_relu_and_input_grad(lambda t: trunk(t)[0], x)
    for a, b in zip(want, got):
        assert a.shape == b.shape and (a - b).abs().max() <= 1e-5 * a.abs().max()
    assert trunk(x.double()) is None  # other dtypes: the caller's plain path
    assert PackedTrunk.build([torch.nn.AvgPool2d(2), conv, torch.nn.ReLU()], [3], lambda: shift, lambda: scale) is None


@pytest.mark.skipif(not packing_available(), reason="this torch has no oneDNN packing ops")
def test_packed_convolution_keeps_its_last_shapes_across_threads_and_falls_back_for_float64():
    conv = torch.nn.Conv2d(8, 6, 3, padding=1)
    packed = PackedConvolution(lambda: conv.weight, lambda: conv.bias, transposed=False, padding=1)
    inputs = [torch.randn(1 + i % 2, 8, 3 + i, 3 + i) for i in range(packed.max_shapes + 2)]
    results: dict[int, torch.Tensor] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, packed(inputs[i]))) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert packed.shapes_packed == packed.max_shapes
    for i, x in enumerate(inputs):
        assert torch.allclose(results[i], torch.relu(conv(x)), atol=1e-5)
        assert torch.equal(packed(x), results[i])  # re-packed or not, the same result for the same input
    assert packed(torch.randn(1, 8, 5, 5, dtype=torch.float64)) is None


@pytest.mark.parametrize("operator", [build_operator("super-resolution", 64, factor=4), SuperResolution(4, 64),
                                      Denoising(25)], ids=["sr-matrices", "sr", "denoise"])
def test_cached_lpips_target_features_give_the_uncached_loss(dcgan, operator):
    y = operator.A(dcgan.render(dcgan.sample_variables(2, torch.Generator().manual_seed(1))))
    cfg = SolverConfig(steps=(2,), lpips_net="alex", geodesic_weight=0.0)
    solver = ILOSolver(dcgan, operator, y, cfg)
    assert solver._lpips_target is not None
    variables = dcgan.sample_variables(2, torch.Generator().manual_seed(2))
    cached = solver.objective(0, {}, variables)[1]["lpips"]
    solver._lpips_target = None
    direct = solver.objective(0, {}, variables)[1]["lpips"]
    assert torch.allclose(cached, direct, atol=1e-6)


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "unpacked"])
def test_folded_dcgan_equals_the_tutorial_modules_at_every_split(dcgan, dcgan_plain, packed):
    assert all(isinstance(stage, FoldedStage) for stage in dcgan.stages)
    assert all((stage.packed is not None) == packing_available() for stage in dcgan.stages)  # packed where it can
    if not packed:
        dcgan = copy.deepcopy(dcgan)
        for stage in dcgan.stages:
            stage.packed = None
    for batch in (1, 3):  # the matrix-product stages treat batch 1 apart
        variables = dcgan.sample_variables(batch, torch.Generator().manual_seed(4))
        for split in range(dcgan.num_layers):
            fast_img, fast_grads = _render_and_grads(dcgan, variables, split)
            ref_img, ref_grads = _render_and_grads(dcgan_plain, variables, split)
            assert (fast_img - ref_img).abs().max() < 1e-4, (batch, split)
            for k in ref_grads:
                assert torch.allclose(fast_grads[k], ref_grads[k], rtol=1e-3,
                                      atol=1e-4 * ref_grads[k].abs().max()), (batch, split, k)


def test_a_copy_of_the_packed_dcgan_packs_afresh_and_renders_the_same(dcgan):
    variables = dcgan.sample_variables(2, torch.Generator().manual_seed(5))
    copied = copy.deepcopy(dcgan)
    assert torch.equal(copied.render(variables), dcgan.render(variables))
    stage = copied.stages[2]
    assert stage.packed is None or stage.packed.weight() is stage.weight  # reads its own weights


def test_flop_counts_of_the_packed_paths_equal_the_plain_ones(dcgan, dcgan_plain):
    from torch.utils.flop_counter import FlopCounterMode

    def flops(fn) -> int:
        with FlopCounterMode(display=False, custom_mapping=flop_formulas()) as counter:
            fn()
        return counter.get_total_flops()

    def pass_of(gen):
        leaf = gen.sample_variables(1, torch.Generator().manual_seed(0))["latent"].requires_grad_(True)
        return lambda: gen.render_from(0, {}, {"latent": leaf}).square().sum().backward()

    def trunk_of(model):
        x = torch.rand(1, 3, 64, 64, requires_grad=True)
        return lambda: sum(f.sum() for f in model(x)).backward()

    assert flops(pass_of(dcgan)) == flops(pass_of(dcgan_plain)) > 4e8
    # alex's packed conv1 (11 x 11, stride 4, 3 -> 64 channels, 15 x 15 out) runs as a 3 x 3
    # convolution over the 48-channel space-to-depth input (17 x 17); its input gradient is
    # a 3 x 3 convolution with padding 2 (64 -> 48 channels, 17 x 17 out)
    conv1 = 2 * 64 * 3 * 11 * 11 * 15 * 15
    space_to_depth = 2 * 64 * 48 * 3 * 3 * (15 * 15 + 17 * 17)
    plain = flops(trunk_of(LPIPSNetwork("alex")))
    assert flops(trunk_of(get_lpips("alex", "cpu", reference=False))) == plain - 2 * conv1 + space_to_depth
    assert plain > 1e8


def test_benchmark_rows_for_the_engine_and_its_reference(dcgan, capsys):
    from ilo_core.evaluation import benchmark

    rows = benchmark.bench_generator(dcgan, "default", repeats=1, splits=[0])
    ref = benchmark.build_generator("default", torch.device("cpu"), reference=True)
    assert isinstance(ref.stages[0], torch.nn.Sequential)  # the tutorial's modules
    ref_rows = benchmark.bench_generator(ref, "reference", repeats=1, lpips=False, splits=[3], reference=True)
    for row in rows + ref_rows:
        assert row["gflop"] > 0.1 and row["pass_ms"] > 0 and row["step_mse_ms"] > 0
        assert row["peak_mb"] is None or row["peak_mb"] > 100
        # the FLOP limit comes from the matmul timed in the same loop
        limit_ms = row["gflop"] / row["matmul_gflops"] * 1000
        assert row["matmul_gflops"] > 1 and row["pass_vs_flop_limit"] == pytest.approx(row["pass_ms"] / limit_ms)
    assert rows[0]["step_mse_lpips_ms"] > 0 and "step_mse_lpips_ms" not in ref_rows[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc tuning is for Linux/glibc")
def test_kept_memory_lets_a_large_tensor_be_reallocated_without_page_faults():
    assert keep_freed_memory()

    def faults_of_one_allocation() -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = torch.ones(64 * 2**20)  # 256 MB, written once
        del t
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    faults_of_one_allocation()
    # glibc's default would map and fault in all 65536 pages again
    assert min(faults_of_one_allocation() for _ in range(3)) < 1000


@pytest.mark.parametrize("demodulate", [True, False])
def test_scaled_modulated_conv_is_the_plain_map_and_its_gain_scales_the_output(demodulate):
    torch.manual_seed(0)
    plain = ModulatedConv2d(4, 5, 3, 8, demodulate=demodulate)
    for param in plain.parameters():  # the module starts at zero
        torch.nn.init.normal_(param)
    fast = ScaledModulatedConv2d(plain)
    assert fast.weight is plain.weight  # shared, not copied
    x, w = torch.randn(2, 4, 6, 6), torch.randn(2, 8)
    assert plain(x, w).abs().max() > 0.1
    assert torch.allclose(fast(x, w), plain(x, w), atol=1e-5)
    assert torch.allclose(fast(x, w, gain=2.0), 2.0 * plain(x, w), atol=1e-5)


def test_accelerated_stylegan_keeps_the_plain_state_dict(stylegan64, stylegan64_plain):
    fast, plain = stylegan64.state_dict(), stylegan64_plain.state_dict()
    assert list(fast) == list(plain) and all(torch.equal(fast[k], plain[k]) for k in plain)


@pytest.mark.parametrize("size,factor", [(64, 4), (256, 2), (256, 8), (1024, 2), (1024, 4)])
def test_super_resolution_matrices_are_f_interpolate_within_1e6(size, factor):
    op = accelerate(SuperResolution(factor, size), reference=False)
    assert isinstance(op, MatrixSuperResolution) == (size // factor <= MATRIX_MAX_LOW_RES)
    x = torch.rand(2, 3, size, size) * 2 - 1
    y = op.A(x)
    assert (y - bicubic_downsample(x, factor)).abs().max() < 1e-6
    plain = SuperResolution(factor, size)
    assert (op.perceptual_view(y, x) - plain.perceptual_view(y, x)).abs().max() < 1e-6


def test_the_reference_switch_keeps_every_plain_model(monkeypatch, dcgan_plain):
    monkeypatch.setenv("ILO_REFERENCE", "1")
    assert reference_requested()
    gen = load_generator("default")
    assert all(isinstance(stage, torch.nn.Sequential) for stage in gen.stages)
    assert type(build_operator("super-resolution", 64, factor=4)) is SuperResolution
    assert type(get_lpips("alex", "cpu")) is LPIPSNetwork
    variables = gen.sample_variables(1, torch.Generator().manual_seed(0))
    assert torch.equal(gen.render(variables), dcgan_plain.render(variables))
    monkeypatch.setenv("ILO_REFERENCE", "0")
    assert not reference_requested() and isinstance(load_generator("default").stages[0], FoldedStage)


def test_a_fast_form_that_disagrees_falls_back_to_the_plain_layers_with_a_warning(dcgan_plain, monkeypatch):
    import ilo_core.accelerate as dispatcher

    original = dispatcher.accelerate_dcgan

    def broken(generator):
        original(generator)
        with torch.no_grad():
            generator.stages[1].bias.add_(0.5)  # a fast form that is not the same map
        return generator

    monkeypatch.setattr(dispatcher, "accelerate_dcgan", broken)  # the name accelerate() dispatches to
    gen = copy.deepcopy(dcgan_plain)
    with pytest.warns(UserWarning, match="disagree"):
        out = accelerate(gen, reference=False)
    assert all(isinstance(stage, torch.nn.Sequential) for stage in out.stages)
    variables = out.sample_variables(1, torch.Generator().manual_seed(0))
    assert torch.equal(out.render(variables), dcgan_plain.render(variables))


def test_perceptual_distance_does_not_own_the_shared_network():
    dist = PerceptualDistance("alex", size=None)
    assert not isinstance(dist, torch.nn.Module)
    shared = get_lpips("alex", "cpu")
    assert dist._network is shared and shared.weights[0].dtype == torch.float32
