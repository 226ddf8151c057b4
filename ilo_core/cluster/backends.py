"""The runner: a job's cells through one back end, each finished cell's record saved as it
arrives. Back ends: `in_process()` (the default: this process, one cell after another, nothing
to start) and `ray_cluster(address)` (Ray Core tasks on a local instance or a cluster;
`ilo_core.cluster.ray_backend`, Ray imported only then).

A cell function is `function(spec, payload, shared, context) -> {"data": JSON, "files": {name:
bytes}}`, importable by name (a module-level function), pure in its spec: the same spec gives
the same data on any back end. A cell that raises is run again up to `retries` times, then
recorded as failed with its one-line reason; the job goes on. A worker lost mid-cell (killed,
its node gone) is the same to the runner: the cell runs again elsewhere and is recorded once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch

from ilo_core.cluster.cells import Cell, code_version, one_line
from ilo_core.cluster.execution import CellFunction, execute, failure, where
from ilo_core.cluster.progress import JobProgress
from ilo_core.cluster.records import RecordStore
from ilo_core.cluster.shipping import ShippedGenerator, WorkerContext

if TYPE_CHECKING:
    from ilo_core.cluster.ray_backend import RayCluster

RETRIES = 2  # a raising cell runs at most 1 + RETRIES times


@dataclass
class CellEvent:
    """A cell of the job finished (`status` "done" or "failed") or was recorded before ("recorded")."""

    cell: Cell
    status: str
    record: dict
    files: dict[str, bytes] = field(default_factory=dict)  # what the cell returned (written by the store when it has a files_root)


class Runner(Protocol):
    name: str

    def run(self, cells: list[Cell], function: CellFunction, shared: Any, retries: int,
            progress: JobProgress) -> Iterator[tuple[Cell, dict]]:
        """(cell, outcome) as cells finish, in any order; outcome: {"status", "data", "files",
        "reason", "seconds", "worker"}."""
        ...


class InProcess:
    """Cells one after another in this process, on the generator it loaded."""

    name = "in-process"

    def __init__(self, context: WorkerContext) -> None:
        self.context = context

    def run(self, cells: list[Cell], function: CellFunction, shared: Any, retries: int,
            progress: JobProgress) -> Iterator[tuple[Cell, dict]]:
        threads = torch.get_num_threads()
        try:
            yield from self._run(cells, function, shared, retries, progress)
        finally:
            torch.set_num_threads(threads)  # the process's own count again

    def _run(self, cells: list[Cell], function: CellFunction, shared: Any, retries: int,
             progress: JobProgress) -> Iterator[tuple[Cell, dict]]:
        for cell in cells:
            label = cell.label or cell.key
            progress.busy = {label: where()}
            progress.changed()

            def say(text: str, label: str = label) -> None:
                progress.busy = {label: f"{where()} ({text})"}
                progress.changed()

            self.context.say = say
            reason = ""
            loaded = cell.loaded()
            for _ in range(1 + retries):
                try:
                    outcome = execute(function, loaded, shared, self.context)
                    break
                except Exception as err:  # the cell's failure, not the job's: recorded, the job goes on
                    reason = one_line(err)
            else:
                outcome = failure(f"{reason} (tried {1 + retries} times)")
            progress.busy = {}
            yield cell, outcome


def in_process(context: WorkerContext) -> InProcess:
    return InProcess(context)


def ray_cluster(address: str, shipped: ShippedGenerator | None) -> "RayCluster":
    """Ray Core tasks: `address` "auto" joins the Ray instance running on this machine or starts
    one (loopback only), or "HOST:PORT" joins that cluster."""
    from ilo_core.cluster.ray_backend import RayCluster

    return RayCluster(address, shipped)


def run_cells(cells: Iterable[Cell], function: CellFunction, store: RecordStore, runner: Runner, *,
              shared: Any = None, retries: int = RETRIES, force: bool = False,
              on_progress: Callable[[JobProgress], None] | None = None) -> Iterator[CellEvent]:
    """Run the cells whose records are missing (all with `force`), saving each record as it
    arrives; one event per cell of the job (a spec given twice is one cell)."""
    unique = list({cell.key: cell for cell in cells}.values())
    progress = JobProgress(total=len(unique), listener=on_progress)
    todo = []
    for cell in unique:
        record = None if force else store.load(cell.key)
        if record is not None and record.get("status") == "done":
            progress.recorded += 1
            yield CellEvent(cell, "recorded", record)
        else:
            todo.append(cell)
    progress.changed()
    if not todo:
        return
    for cell, outcome in runner.run(todo, function, shared, retries, progress):
        record = {"key": cell.key, "label": cell.label, "spec": cell.spec, "status": outcome["status"],
                  "reason": outcome["reason"], "data": outcome["data"],
                  "run": {"seconds": outcome["seconds"], "worker": outcome["worker"], "back_end": runner.name,
                          "code": code_version(), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}}
        store.save(record, outcome["files"])
        if outcome["status"] == "done":
            progress.done += 1
        else:
            progress.failed += 1
        progress.changed()
        yield CellEvent(cell, outcome["status"], record, outcome["files"])
