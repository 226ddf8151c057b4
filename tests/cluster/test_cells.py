"""Cells, their keys and records, and the in-process runner: no Ray anywhere."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT
from ilo_core.cluster import Cell, RecordStore, ShippedGenerator, WorkerContext, in_process, run_cells
from ilo_core.cluster.cells import spec_key
from ilo_core.cluster.records import safe_relative
from ilo_core.cluster.resources import gpu_share


def test_a_spec_has_one_key_whatever_the_order_of_its_fields():
    a = {"task": "inpaint", "seed": 0, "images": [{"name": "x", "pixels": "ab"}]}
    b = {"images": [{"pixels": "ab", "name": "x"}], "seed": 0, "task": "inpaint"}
    assert spec_key(a) == spec_key(b) and len(spec_key(a)) == 24
    assert spec_key({**a, "seed": 1}) != spec_key(a)
    assert Cell(a, "one").key == Cell(b, "other", payload=b"bytes").key  # label and payload are not hashed


def test_a_gpu_share_grows_with_the_pixels_a_cell_renders():
    assert gpu_share(1024, 1) == 1.0 and gpu_share(1024, 4) == 1.0
    assert gpu_share(512, 1) == 0.25 and gpu_share(512, 2) == 0.5
    assert gpu_share(256, 1) == 0.125 and gpu_share(64, 8) == 0.125


def test_a_record_names_no_file_outside_its_folder(tmp_path):
    for name in ("../x.png", "/etc/passwd", "a/../../b", "", "a\\b"):
        with pytest.raises(ValueError):
            safe_relative(name)
    assert str(safe_relative("images/a.png")) == "images/a.png"
    store = RecordStore(tmp_path / "records", files_root=tmp_path)
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "abc.json").write_text("{not json")
    assert store.load("abc") is None  # a broken file is no record: the cell runs again


def square(spec, payload, shared, context):
    """A cell: the square of its number, a file, and a failure for a negative number."""
    if spec["n"] < 0:
        raise ArithmeticError(f"{spec['n']} is negative\nsecond line")
    return {"data": {"square": spec["n"] ** 2 + shared["offset"]}, "files": {f"out/{spec['n']}.txt": b"%d" % spec["n"]}}


def test_the_in_process_runner_records_each_cell_once_and_a_rerun_runs_only_what_is_missing(tmp_path):
    store = RecordStore(tmp_path / "records", files_root=tmp_path)
    runner = in_process(WorkerContext(None, "cpu"))
    cells = [Cell({"n": n}, f"n={n}") for n in (1, 2, 3, 2)]  # 2 twice: one cell
    events = list(run_cells(cells[:2], square, store, runner, shared={"offset": 10}))
    assert [e.status for e in events] == ["done", "done"]
    events = list(run_cells(cells, square, store, runner, shared={"offset": 10}))
    assert [(e.cell.spec["n"], e.status) for e in events] == [(1, "recorded"), (2, "recorded"), (3, "done")]
    assert store.load(cells[2].key)["data"] == {"square": 19}
    assert (tmp_path / "out" / "3.txt").read_bytes() == b"3"
    assert len(list((tmp_path / "records").glob("*.json"))) == 3


def test_a_raising_cell_is_tried_a_bounded_number_of_times_then_recorded_failed_and_the_job_goes_on(tmp_path):
    store = RecordStore(tmp_path / "records", files_root=tmp_path)
    runner = in_process(WorkerContext(None, "cpu"))
    cells = [Cell({"n": -1}, "bad"), Cell({"n": 4}, "good")]
    events = list(run_cells(cells, square, store, runner, shared={"offset": 0}, retries=2))
    assert [e.status for e in events] == ["failed", "done"]
    record = store.load(cells[0].key)
    assert record["reason"] == "ArithmeticError: -1 is negative (tried 3 times)"  # one line
    assert record["status"] == "failed" and store.load(cells[1].key)["status"] == "done"
    # a failure is no result: the next run tries it again
    again = list(run_cells(cells, square, store, runner, shared={"offset": 0}, retries=0))
    assert [(e.cell.label, e.status) for e in again] == [("good", "recorded"), ("bad", "failed")]


def halfway(spec, payload, shared, context):
    context.say("frame 2 of 4")
    return {"data": spec}


def test_a_long_cell_says_where_it_is_beside_its_worker(tmp_path):
    seen = []
    runner = in_process(WorkerContext(None, "cpu"))
    list(run_cells([Cell({"n": 1}, "clip")], halfway, RecordStore(tmp_path), runner,
                   on_progress=lambda p: seen.append(dict(p.busy))))
    assert any(busy.get("clip", "").endswith("(frame 2 of 4)") for busy in seen)
    assert seen[-1] == {}  # nothing busy once it is done


def test_the_embedded_generator_travels_by_name_and_is_rebuilt_with_the_same_weights(dcgan):
    shipped = ShippedGenerator.of("default", dcgan)
    assert shipped.name == "default" and shipped.data is None
    assert WorkerContext(shipped, "cpu").generator().identity == dcgan.identity


def test_the_drivers_reference_switch_travels_with_the_generator_and_names_its_cells(dcgan, monkeypatch):
    """`solve --reference --cluster`: workers build the plain models too, and the cells say so."""
    from ilo_core.cluster.shipping import generator_spec

    assert not ShippedGenerator.of("default", dcgan).reference and not generator_spec(dcgan)["reference"]
    monkeypatch.setenv("ILO_REFERENCE", "1")
    assert ShippedGenerator.of("default", dcgan).reference and generator_spec(dcgan)["reference"]
    assert not ShippedGenerator.of("default", dcgan, reference=False).reference  # an explicit choice wins


def test_a_checkpoint_travels_as_safetensors_bytes_and_a_worker_needs_no_copy_of_its_file(stylegan64, tmp_path):
    from conftest import REFERENCE

    source = tmp_path / "mine.pt"
    source.write_bytes((REFERENCE / "rosinality_g64.pt").read_bytes())
    shipped = ShippedGenerator.of(source, stylegan64)
    source.unlink()  # the worker has only the bytes
    assert shipped.data[:8] and shipped.name is None
    rebuilt = WorkerContext(shipped, "cpu").generator()
    assert rebuilt.identity == stylegan64.identity and rebuilt.resolution == 64
    wrong = ShippedGenerator("0" * 16, data=shipped.data)
    with pytest.raises(ValueError, match="weights"):
        WorkerContext(wrong, "cpu").generator()


def test_the_in_process_back_end_needs_no_ray(tmp_path):
    """The evaluation grid in a process where `import ray` fails."""
    code = ("import sys; sys.modules['ray'] = None\n"
            "from ilo_core.evaluation.evaluate import main\n"
            f"code = main(['--quick', '--tasks', 'super-resolution', '--methods', 'csgm-mse', '--samples', '0', "
            f"'--steps', '2', '--no-sna-ablation', '--out', {str(tmp_path / 'eval')!r}])\n"
            "assert 'ray' not in sys.modules or sys.modules['ray'] is None\n"
            "raise SystemExit(code)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert data["meta"]["back_end"] == "in-process" and data["meta"]["cells"]["done"] == 1


def test_a_killed_driver_in_one_process_loses_only_the_cell_it_was_running(tmp_path):
    """kill -9 of the evaluation mid-grid, then the same command: the cells recorded stay, the rest run."""
    import os
    import re
    import signal
    import time

    grid = [sys.executable, "-m", "ilo_core.evaluation.evaluate", "--quick", "--tasks", "super-resolution,denoise",
            "--methods", "csgm-mse,ilo", "--samples", "1", "--steps", "4", "--no-sna-ablation",
            "--images-per-cell", "1", "--out", str(tmp_path)]
    driver = subprocess.Popen(grid, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records, deadline = tmp_path / "records", time.monotonic() + 300
    while len(list(records.glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(timeout=60)
    kept = len(list(records.glob("*.json")))
    assert 2 <= kept < 8 and not list(records.glob("*.tmp*"))  # whole records only
    again = subprocess.run(grid, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    found = re.search(r"cells: 8, (\d+) run now, (\d+) recorded before", again.stdout)
    assert found and (int(found[1]), int(found[2])) == (8 - kept, kept)
    assert len(json.loads((tmp_path / "results.json").read_text())["records"]) == 8
