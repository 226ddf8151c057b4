"""`python -m ilo_core.evaluation.benchmark`: per split point, the cost of the generator pass and of
one ILO step, against this machine's measured matmul throughput.

For each split: FLOPs of forward + input-gradient (counted with torch's FlopCounterMode),
median ms of that pass, median ms of one full ILO step (objective, backward, Adam,
projections) with MSE only and with MSE + LPIPS, and the ratios step / pass and
pass / FLOP-limit (FLOPs / the float32 throughput of a 2048^2 matmul, timed just before
and just after the row), and the peak memory of the pass (process RSS high-water mark on
CPU, allocator peak on CUDA).

The same table is measured for the plain models with the same weights, without
`ilo_core.accelerate` ("reference": the tutorial's nn.Sequential DCGAN with BatchNorm, or
rosinality's StyleGAN-2 with per-sample modulated weights and grouped convolutions; the
plain bicubic resizes of the super-resolution target), in the same run. docs/benchmark.md
keeps the figures measured with it.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ilo_core.accelerate import accelerate, set_up_process, use_reference
from ilo_core.accelerate.packed_conv import flop_formulas
from ilo_core.checkpoints import load_generator, resolve_device
from ilo_core.engine.config import SolverConfig
from ilo_core.engine.presets import default_rounds
from ilo_core.engine.solver import ILOSolver
from ilo_core.generators import SplitGenerator, StyleGAN2Generator
from ilo_core.physics.operators import SuperResolution


def _sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize()


def interleaved_medians_ms(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2,
                           device: torch.device | None = None) -> dict[str, float]:
    """Median ms of each function, timed in turn (a, b, c, a, b, c, ...) so that drift in
    this machine's speed hits all of them alike and their ratios stay steady; warm-up excluded."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            times[name].append((time.perf_counter() - t) * 1000)
    return {name: statistics.median(ts) for name, ts in times.items()}


MATMUL_N, MATMUL_REPEATS = 2048, 5


def matmul_ms(device: torch.device, n: int = MATMUL_N, repeats: int = MATMUL_REPEATS) -> float:
    """Median ms of an n x n float32 matmul; its operands exist only while it is timed (so
    that they never count in a pass's peak memory)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    return interleaved_medians_ms({"matmul": lambda: a @ b}, repeats, device=device)["matmul"]


def _gflops(ms: float, n: int = MATMUL_N) -> float:
    return 2 * n**3 / (ms / 1000) / 1e9


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def peak_memory_mb(fn, device: torch.device) -> float | None:
    """Peak memory in MB while fn() runs: the CUDA allocator's peak, or on Linux the
    process's resident high-water mark (reset through /proc/self/clear_refs). With malloc
    keeping freed memory (`ilo_core.accelerate.memory`) the resident size never shrinks, so on CPU this
    is the whole process's peak, an upper bound for the pass."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        Path("/proc/self/clear_refs").write_text("5")
        fn()
        return _status_kb("VmHWM") / 1024
    except OSError:
        return None


def build_generator(spec: str, device: torch.device, reference: bool) -> SplitGenerator:
    """`load_generator(spec)`, or for 'stylegan2-SIZE-CM' a StyleGAN-2 with seeded random
    weights (timing only); accelerated unless `reference`."""
    if not spec.startswith("stylegan2-"):
        return load_generator(spec, device, reference=reference)
    _, size, cm = spec.split("-")
    gen = StyleGAN2Generator(int(size), channel_multiplier=int(cm))
    rng = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in gen.parameters():
            p.normal_(0, 0.5 if p.ndim else 0.1, generator=rng)
    return accelerate(gen.freeze(), reference=reference).to(device)


def bench_generator(gen: SplitGenerator, name: str, repeats: int, lpips: bool = True,
                    splits: list[int] | None = None, reference: bool = False) -> list[dict]:
    """One row per split. The matmul that sets the FLOP limit is timed just before and just
    after each row (the mean of the two medians): measured once per run, the ratio to it
    moved by 10 % between runs here as this machine's speed drifted. It is not timed in
    turn with the pass: a 2048^2 matmul sweeps the caches, and the pass after it ran 10 %
    slower than after an ILO step, which is where the pass runs in a solve."""
    rows = []
    device = gen.device
    after_previous = matmul_ms(device)
    v = gen.sample_variables(1, torch.Generator(device=device).manual_seed(0))
    target = accelerate(SuperResolution(4, gen.resolution), reference=reference).to(device)
    with torch.no_grad():
        y = target.A(gen.render(v))
    for split in (splits if splits is not None else range(default_rounds(gen))):
        state = gen.state_at(split, v)
        leaves = {k: t.detach().clone().requires_grad_(True) for k, t in (state.items() if split else v.items())}

        def pass_fn():
            s = {**state, **leaves} if split else {}
            vv = v if split else {**v, **leaves}
            img = gen.render_from(split, s, vv)
            img.square().sum().backward()

        with FlopCounterMode(display=False, custom_mapping=flop_formulas()) as counter:
            pass_fn()
        flops = counter.get_total_flops()
        peak_mb = peak_memory_mb(pass_fn, device)
        timed: dict[str, Callable[[], object]] = {"pass_ms": pass_fn}
        runs = []
        for label, lw in (("step_mse_ms", 0.0), ("step_mse_lpips_ms", 1.0)):
            if lw and not lpips:
                continue
            cfg = SolverConfig(steps=(repeats + 5,), start_split=split, lpips_weight=lw, lpips_net="alex",
                               geodesic_weight=0.0, radii={"state": [100.0], "latents": [100.0]}, preview_every=10**6)
            run = ILOSolver(gen, target, y, cfg).run()
            next(run)  # the first step builds the round
            runs.append(run)
            timed[label] = functools.partial(next, run)
        before = after_previous
        row = {"generator": name, "split": split, "gflop": flops / 1e9, "peak_mb": peak_mb,
               **interleaved_medians_ms(timed, repeats, device=device)}
        after_previous = matmul_ms(device)  # after this row, before the next
        row["matmul_gflops"] = _gflops((before + after_previous) / 2)
        for run in runs:
            run.close()
        row["pass_vs_flop_limit"] = row["pass_ms"] / (flops / row["matmul_gflops"] / 1e6) if flops else float("nan")
        row["step_vs_pass"] = row["step_mse_ms"] / row["pass_ms"]
        if "step_mse_lpips_ms" in row:
            row["step_lpips_vs_pass"] = row["step_mse_lpips_ms"] / row["pass_ms"]
        rows.append(row)
    return rows


COLUMNS = ["split", "gflop", "matmul_gflops", "pass_ms", "pass_vs_flop_limit", "step_mse_ms", "step_mse_lpips_ms",
           "step_vs_pass", "step_lpips_vs_pass", "peak_mb"]


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(" | ".join(COLUMNS))
    for r in rows:
        print(" | ".join(f"{r[c]:.3f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in COLUMNS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default="default", help="'default', a checkpoint path, or 'stylegan2-SIZE-CM' (random weights)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--splits", default=None, help="comma-separated split points (default: the first four)")
    parser.add_argument("--no-reference", action="store_true", help="skip the plain models' table")
    parser.add_argument("--reference", action="store_true",
                        help="the plain models only, also for the first table (ILO_REFERENCE=1)")
    parser.add_argument("--json", help="write the rows as JSON")
    args = parser.parse_args(argv)
    use_reference(args.reference)
    malloc_tuned = set_up_process()
    device = resolve_device(args.device)
    gen = build_generator(args.generator, device, reference=args.reference)
    splits = [int(s) for s in args.splits.split(",")] if args.splits else None
    print(f"device {device}, {torch.get_num_threads()} threads, malloc keeps freed memory: {malloc_tuned}; "
          f"FLOP limit: a {MATMUL_N}^2 float32 matmul, timed before and after each row")
    rows = bench_generator(gen, args.generator, args.repeats, splits=splits)
    print_table(f"{args.generator}: this engine", rows)
    ref_rows = []
    if not (args.no_reference or args.reference):
        del gen  # one generator in memory at a time (1024 px config-f)
        ref = build_generator(args.generator, device, reference=True)
        ref_rows = bench_generator(ref, args.generator + " (reference)", args.repeats, lpips=False, splits=splits,
                                   reference=True)
        print_table(f"{args.generator}: the plain models (reference)", ref_rows)
        print("\nspeed-up of the generator pass over the reference: " + ", ".join(
            f"split {a['split']} {b['pass_ms'] / a['pass_ms']:.2f}x" for a, b in zip(rows, ref_rows)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"malloc_keeps_freed_memory": malloc_tuned, "rows": rows, "reference_rows": ref_rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
