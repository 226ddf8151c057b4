"""`python -m ilo_core.benchmark`: per split point, the cost of the generator pass and of
one ILO step, against this machine's measured matmul throughput.

For each split: FLOPs of forward + input-gradient (counted with torch's FlopCounterMode),
median ms of that pass, median ms of one full ILO step (objective, backward, Adam,
projections) with MSE only and with MSE + LPIPS, and the ratios step / pass and
pass / FLOP-limit (FLOPs / measured 2048^2 float32 matmul throughput).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ilo_core.config import SolverConfig
from ilo_core.generators import SplitGenerator, StyleGAN2Generator, load_generator, resolve_device
from ilo_core.operators import SuperResolution
from ilo_core.solver import ILOSolver


def _median_ms(fn, repeats: int, warmup: int = 2, device: torch.device | None = None) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def matmul_gflops(device: torch.device, n: int = 2048) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    ms = _median_ms(lambda: a @ b, 10, device=device)
    return 2 * n**3 / (ms / 1000) / 1e9


def bench_generator(gen: SplitGenerator, name: str, repeats: int, gflops: float, lpips: bool = True) -> list[dict]:
    rows = []
    device = gen.device
    v = gen.sample_variables(1, torch.Generator(device=device).manual_seed(0))
    target = SuperResolution(4, gen.resolution)
    with torch.no_grad():
        y = target.A(gen.render(v))
    for split in range(min(4, gen.num_layers)):
        state = gen.state_at(split, v)
        leaves = {k: t.detach().clone().requires_grad_(True) for k, t in (state.items() if split else v.items())}

        def pass_fn():
            s = {**state, **leaves} if split else {}
            vv = v if split else {**v, **leaves}
            img = gen.render_from(split, s, vv)
            img.square().sum().backward()

        with FlopCounterMode(display=False) as counter:
            pass_fn()
        flops = counter.get_total_flops()
        pass_ms = _median_ms(pass_fn, repeats, device=device)
        row = {"generator": name, "split": split, "gflop": flops / 1e9, "pass_ms": pass_ms,
               "pass_vs_flop_limit": pass_ms / (flops / gflops / 1e6) if flops else float("nan")}
        for label, lw in (("step_mse_ms", 0.0), ("step_mse_lpips_ms", 1.0)):
            if lw and not lpips:
                continue
            cfg = SolverConfig(steps=(repeats + 3,), start_split=split, lpips_weight=lw, lpips_net="alex",
                               geodesic_weight=0.0, radii={"state": [100.0], "latents": [100.0]}, preview_every=10**6)
            run = ILOSolver(gen, target, y, cfg).run()
            next(run), next(run)
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                next(run)
                times.append((time.perf_counter() - t) * 1000)
            run.close()
            row[label] = statistics.median(times)
        row["step_vs_pass"] = row["step_mse_ms"] / pass_ms
        if "step_mse_lpips_ms" in row:
            row["step_lpips_vs_pass"] = row["step_mse_lpips_ms"] / pass_ms
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default="default", help="'default', a checkpoint path, or 'stylegan2-SIZE-CM' (random weights)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", help="write the rows as JSON")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    if args.generator.startswith("stylegan2-"):
        _, size, cm = args.generator.split("-")
        gen = StyleGAN2Generator(int(size), channel_multiplier=int(cm)).to(device)
        with torch.no_grad():
            for p in gen.parameters():
                p.normal_(0, 0.5 if p.ndim else 0.1)
        gen.freeze()
    else:
        gen = load_generator(args.generator, device)
    gflops = matmul_gflops(device)
    print(f"device {device}, float32 matmul {gflops:.1f} GFLOP/s, {torch.get_num_threads()} threads")
    rows = bench_generator(gen, args.generator, args.repeats, gflops)
    cols = ["split", "gflop", "pass_ms", "pass_vs_flop_limit", "step_mse_ms", "step_mse_lpips_ms", "step_vs_pass",
            "step_lpips_vs_pass"]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(f"{r[c]:.3f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in cols))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"matmul_gflops": gflops, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
