"""What running the evaluation grid's cells on Ray costs and gains on this machine.

    python -m ilo_core.evaluation.studies cluster_costs [--samples 5] [--steps 10] [--workers 1,2]

One grid (the example face and `--samples` held-out samples, four tasks at the quick levels,
CSGM and ILO, an image a cell, one thread a cell) run in this process (also with every thread
of the machine a cell, the in-process default) and on local Ray clusters
of 1, 2, ... workers (each a head on 127.0.0.1 with that many CPUs, started and stopped here,
token authentication on). Per run: the grid's wall time (from the first cell sent to the last
record written: no start-up, no generator load), cells per minute, the mean time a cell spends
computing, and Ray's overhead per cell (its 1-worker wall time over the in-process one, per
cell). Every run's records are compared with the in-process run's (bit-identical expected).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
RAY = Path(sys.executable).parent / "ray"


def grid_args(samples: int, steps: int) -> list[str]:
    return ["--quick", "--tasks", "random-inpaint,inpaint,denoise,super-resolution", "--methods", "csgm-mse,ilo",
            "--samples", str(samples), "--steps", str(steps), "--no-sna-ablation", "--images-per-cell", "1",
            "--cpus-per-cell", "1"]


def run_grid(args: list[str], out: Path, env: dict[str, str]) -> dict:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ilo_core.evaluation.evaluate", *args, "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the grid failed: {done.stderr[-2000:]}")
    data = json.loads((out / "results.json").read_text())
    cells = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    return {"wall": data["meta"]["seconds_total"], "command": time.perf_counter() - started, "cells": len(cells),
            "compute": sum(c["run"]["seconds"] for c in cells) / len(cells),
            "records": {(r["cell"], r["image"]): {k: v for k, v in r.items() if k != "seconds"} for r in data["records"]},
            "workers": len({c["run"]["worker"] for c in cells})}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m ilo_core.evaluation.studies cluster_costs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    grid = grid_args(args.samples, args.steps)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ilo-cluster-costs-") as folder:
        token = Path(folder) / "token"
        token.write_text(os.urandom(16).hex())
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
               "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
        base = run_grid(grid, Path(folder) / "in_process", env)
        rows.append(("in process", 1, base))
        threads = grid[:-2]  # without "--cpus-per-cell 1": every thread of the machine a cell
        rows.append(("in process, every thread a cell (the default)", 1, run_grid(threads, Path(folder) / "threads", env)))
        for n in (int(w) for w in args.workers.split(",")):
            port = 6400 + n
            subprocess.run([str(RAY), "start", "--head", f"--port={port}", f"--num-cpus={n}", "--num-gpus=0",
                            "--include-dashboard=false", "--disable-usage-stats"], env=env, check=True,
                           capture_output=True)
            try:
                rows.append(("ray", n, run_grid(grid + ["--cluster", f"127.0.0.1:{port}"], Path(folder) / f"ray{n}", env)))
            finally:
                subprocess.run([str(RAY), "stop", "--force"], env=env, capture_output=True)
    cells = base["cells"]
    print(f"{cells} cells ({' '.join(grid)}), 64 px DCGAN, one thread a cell\n")
    print("| back end | workers | grid wall (s) | cells / min | mean cell compute (s) | whole command (s) | records = in process |")
    print("|---|---|---|---|---|---|---|")
    for name, n, r in rows:
        same = "other threads" if "default" in name else "yes" if r["records"] == base["records"] else "NO"
        print(f"| {name} | {n} ({r['workers']} seen) | {r['wall']:.1f} | {60 * cells / r['wall']:.1f} | {r['compute']:.2f} | "
              f"{r['command']:.1f} | {same} |")
    one = next((r for name, n, r in rows if name == "ray" and n == 1), None)
    if one is not None:
        print(f"\nRay's overhead per cell, 1 worker against this process: "
              f"{(one['wall'] - base['wall']) / cells:.3f} s ({one['wall'] / base['wall']:.2f}x the grid's wall time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
