"""The evaluation grid on a 2-worker local Ray cluster (127.0.0.1 only): the records of a one-process
run, a worker killed mid-cell, the driver interrupted and run again, a cell that fails."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, local_env

# 2 images (a face and a held-out sample) x 2 tasks x 2 methods, an image a cell: 8 cells
GRID = ["--quick", "--tasks", "super-resolution,inpaint", "--methods", "csgm-mse,ilo", "--samples", "1",
        "--steps", "6", "--no-sna-ablation", "--images-per-cell", "1", "--retries", "1"]
CELLS = 8


def evaluate(out: Path, *extra: str, **env: str) -> list[str]:
    return [sys.executable, "-m", "ilo_core.evaluation.evaluate", *GRID, "--out", str(out), *extra]


def run(out: Path, *extra: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(evaluate(out, *extra), cwd=ROOT, env=local_env(**env), capture_output=True, text=True,
                          timeout=600)


def results(out: Path) -> dict[tuple, dict]:
    """(cell, image) -> the record without its timings; a (cell, image) twice fails."""
    records = json.loads((out / "results.json").read_text())["records"]
    keyed = {(r["cell"], r["image"]): {k: v for k, v in r.items() if k != "seconds"} for r in records}
    assert len(keyed) == len(records), "a record twice"
    return keyed


def ran_now(done: subprocess.CompletedProcess) -> tuple[int, int]:
    """(cells run by this command, cells recorded before it) from its last line."""
    found = re.search(r"cells: (\d+), (\d+) run now, (\d+) recorded before", done.stdout)
    assert found, done.stdout + done.stderr[-2000:]
    return int(found[2]), int(found[3])


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The grid in this machine's one process, on one thread a cell as a Ray worker's."""
    out = tmp_path_factory.mktemp("in_process")
    done = run(out, "--cpus-per-cell", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    return results(out)


def cell_processes() -> dict[int, str]:
    """pid -> title of the Ray workers running a cell now (Ray titles them 'ray::<task name>')."""
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            if title.startswith("ray::ilo-cell"):
                found[int(proc.name)] = title
    return found


def test_the_grid_on_ray_gives_the_records_of_one_process(ray_head, one_process, tmp_path):
    done = run(tmp_path, "--cluster", ray_head)
    assert done.returncode == 0, done.stderr[-3000:]
    assert ran_now(done) == (CELLS, 0)
    assert results(tmp_path) == one_process  # bit-identical: every metric of every image
    records = [json.loads(p.read_text()) for p in (tmp_path / "records").glob("*.json")]
    assert len(records) == CELLS and {r["run"]["back_end"] for r in records} == {"ray"}
    assert len({r["run"]["worker"] for r in records}) >= 2  # two workers shared the cells
    assert (tmp_path / "report.md").is_file() and list((tmp_path / "images").glob("*__ilo.png"))


def test_a_worker_killed_mid_cell_costs_no_record_and_none_twice(ray_head, one_process, tmp_path):
    driver = subprocess.Popen(evaluate(tmp_path, "--cluster", ray_head), cwd=ROOT, env=local_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed, deadline = None, time.monotonic() + 300
    while killed is None and driver.poll() is None and time.monotonic() < deadline:
        running = cell_processes()
        if running:
            killed = min(running)
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    stdout, stderr = driver.communicate(timeout=600)
    assert killed is not None, "no cell was seen running"
    assert driver.returncode == 0, stderr[-3000:]
    assert results(tmp_path) == one_process
    records = [json.loads(p.read_text()) for p in (tmp_path / "records").glob("*.json")]
    assert len(records) == CELLS and all(r["status"] == "done" for r in records)
    assert all(not r["run"]["worker"].endswith(f":{killed}") for r in records)  # its cell was run again elsewhere


def test_an_interrupted_driver_run_again_runs_only_the_missing_cells(ray_head, one_process, tmp_path):
    driver = subprocess.Popen(evaluate(tmp_path, "--cluster", ray_head), cwd=ROOT, env=local_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(list((tmp_path / "records").glob("*.json"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    driver.send_signal(signal.SIGINT)
    _, stderr = driver.communicate(timeout=120)
    recorded = len(list((tmp_path / "records").glob("*.json")))
    assert driver.returncode == 130 and "run the same command again" in stderr, stderr[-3000:]
    assert 3 <= recorded < CELLS
    again = run(tmp_path, "--cluster", ray_head)
    assert again.returncode == 0, again.stderr[-3000:]
    assert ran_now(again) == (CELLS - recorded, recorded)
    assert results(tmp_path) == one_process
    resumed = run(tmp_path, "--resume")  # the grid's own arguments, from results.json; nothing left to run
    assert resumed.returncode == 0 and ran_now(resumed) == (0, CELLS)


def test_a_failing_cell_is_reported_and_the_rest_finish(ray_head, one_process, tmp_path):
    label = "grid inpaint box seed 0 ilo images 1/2"
    done = run(tmp_path, "--cluster", ray_head, ILO_FAIL_CELLS=label)
    assert done.returncode == 1, done.stderr[-3000:]  # a grid with a failed cell says so in its exit status
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["meta"]["cells"] == {"total": CELLS, "done": CELLS - 1, "failed": 1, "missing": 0}
    [failed] = data["failed"]
    assert failed["label"] == label and "injected by ILO_FAIL_CELLS" in failed["reason"]
    assert "(tried 2 times)" in failed["reason"] and "\n" not in failed["reason"]
    assert "Cells that failed" in (tmp_path / "report.md").read_text()
    assert len(data["records"]) == CELLS - 1
    fixed = run(tmp_path, "--cluster", ray_head)  # the cause gone, a re-run runs the failed cell alone
    assert fixed.returncode == 0 and ran_now(fixed) == (1, CELLS - 1)
    assert results(tmp_path) == one_process


def test_a_checkpoints_grid_on_ray_ships_its_weights_and_gives_the_records_of_one_process(ray_head, tmp_path):
    """A StyleGAN-2 file the workers never see: its converted bytes go through the object store."""
    from conftest import REFERENCE

    checkpoint = tmp_path / "mine.pt"
    checkpoint.write_bytes((REFERENCE / "rosinality_g64.pt").read_bytes())
    grid = ["--generator", str(checkpoint), "--quick", "--tasks", "super-resolution", "--methods", "csgm-mse,ilo",
            "--samples", "1", "--steps", "3", "--no-sna-ablation", "--images-per-cell", "1", "--cpus-per-cell", "1"]
    outs = []
    for side, extra in (("here", []), ("there", ["--cluster", ray_head])):
        out = tmp_path / side
        done = subprocess.run([sys.executable, "-m", "ilo_core.evaluation.evaluate", *grid, "--out", str(out), *extra],
                              cwd=ROOT, env=local_env(), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        outs.append(results(out))
    assert len(outs[0]) == 4 and outs[0] == outs[1]
    meta = json.loads((tmp_path / "there" / "results.json").read_text())["meta"]
    assert meta["generator_kind"] == "stylegan2" and meta["resolution"] == 64 and meta["back_end"] == "ray"
