"""Running one cell in this process: the function a back end calls, in the driver or in a worker."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

import torch

from ilo_core.cluster.cells import Cell
from ilo_core.cluster.shipping import WorkerContext

CellFunction = Callable[[dict, Any, Any, WorkerContext], dict]
# fault injection, to see a deployment's failure handling: a cell whose label contains this text raises
FAIL_CELLS = "ILO_FAIL_CELLS"


def where() -> str:
    """This process, as 'host:pid'."""
    return f"{socket.gethostname()}:{os.getpid()}"


def execute(function: CellFunction, cell: Cell, shared: Any, context: WorkerContext) -> dict:
    """Run one cell here, on as many threads as it has CPUs -> its outcome (exceptions go to the
    caller, which retries)."""
    injected = os.environ.get(FAIL_CELLS)
    if injected and injected in cell.label:
        raise RuntimeError(f"a failure injected by {FAIL_CELLS}={injected!r}")
    torch.set_num_threads(max(1, int(cell.resources.cpus)))
    started = time.perf_counter()
    result = function(cell.spec, cell.payload, shared, context)
    return {"status": "done", "data": result.get("data"), "files": result.get("files") or {},
            "reason": "", "seconds": round(time.perf_counter() - started, 3), "worker": where()}


def failure(reason: str) -> dict:
    return {"status": "failed", "data": None, "files": {}, "reason": reason, "seconds": 0.0, "worker": ""}
