"""The Ray back end: every cell a Ray Core task with the cell's resources (CPUs, a share of a
GPU), Ray's `max_retries` for a lost worker and for a raising cell (`retry_exceptions`),
`ray.wait` for the records as they finish. The shared inputs and the generator are put into
the object store once; a worker process rebuilds the generator once (`WorkerContext`) and
keeps it for every later cell of the job.

Loopback by default: "auto" joins the Ray instance running on this machine, or starts one that
listens on 127.0.0.1 only; an address on 127.0.0.1 joins in the same mode. Anyone who can
reach a Ray cluster's ports can run code on it: see docs/evaluation/cluster.md before opening one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ilo_core.cluster.execution import CellFunction, execute, failure, where
from ilo_core.cluster.cells import Cell, code_version, one_line
from ilo_core.cluster.progress import JobProgress
from ilo_core.cluster.shipping import ShippedGenerator, WorkerContext, cell_device

ROOT = Path(__file__).resolve().parents[2]
LOCAL_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's single-machine mode, every port on 127.0.0.1
RUNNING = Path("/tmp/ray/ray_current_cluster")   # where `ray start` leaves the address of this machine's instance
# a worker process's contexts, one per (weights, device, speed paths): the generator is built
# once and only read by the cells after it (Ray runs one task at a time in a worker process)
_CONTEXTS: dict[tuple[str, str, bool], WorkerContext] = {}


class RayClusterError(RuntimeError):
    """Ray could not be joined or started (said in one sentence)."""


class RayCluster:
    name = "ray"

    def __init__(self, address: str, shipped: ShippedGenerator | None) -> None:
        self.address, self.shipped = address, shipped
        self.ray = connect(address)

    def gpus(self) -> float:
        """The cluster's GPUs (0: the cells run on CPUs)."""
        return float(self.ray.cluster_resources().get("GPU", 0))

    def slots(self) -> str:
        resources = self.ray.cluster_resources()
        return f"{resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs on {len(self.ray.nodes())} node(s)"

    def window(self, cells: list[Cell]) -> int:
        """Cells sent at once: twice as many as the cluster can run together (so none waits for
        the driver), at least 4."""
        resources, need = self.ray.cluster_resources(), cells[0].resources
        at_once = resources.get("CPU", 0) / need.cpus
        if need.gpus:
            at_once = min(at_once, resources.get("GPU", 0) / need.gpus)
        return max(4, 2 * int(at_once))

    def run(self, cells: list[Cell], function: CellFunction, shared: Any, retries: int,
            progress: JobProgress) -> Iterator[tuple[Cell, dict]]:
        ray = self.ray
        shared_ref, shipped_ref = ray.put(shared), ray.put(self.shipped)
        busy = busy_board(ray)
        task = ray.remote(run_on_worker)
        waiting, pending = list(reversed(cells)), {}
        window = self.window(cells)
        try:
            last_look = 0.0
            while waiting or pending:
                while waiting and len(pending) < window:  # cells are sent as slots free up
                    cell = waiting.pop()
                    options = {"num_cpus": cell.resources.cpus, "num_gpus": cell.resources.gpus, "max_retries": retries,
                               "retry_exceptions": True, "name": f"ilo-cell {cell.label}"[:100]}
                    ref = task.options(**options).remote(function, cell.loaded(), shared_ref, shipped_ref,
                                                         code_version(), busy)
                    pending[ref] = cell
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in ready:
                    cell = pending.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayTaskError as err:  # the cell raised on every try
                        cause = err.cause if isinstance(getattr(err, "cause", None), BaseException) else err
                        outcome = failure(f"{one_line(cause)} (tried {1 + retries} times)")
                    except ray.exceptions.RayError as err:  # its worker or node was lost on every try
                        outcome = failure(f"its worker was lost {1 + retries} times ({type(err).__name__})")
                    yield cell, outcome
                if time.monotonic() - last_look > 1.0 or ready:
                    last_look = time.monotonic()
                    labels = {c.key: c.label or c.key for c in pending.values()}
                    running = ray.get(busy.snapshot.remote())
                    progress.busy = {labels[k]: w for k, w in running.items() if k in labels}
                    progress.changed()
        finally:  # the driver stopped (Ctrl-C, an error): its job ends with it, and Ray stops the
            # job's tasks (a forced cancel here can race a reply arriving and abort the driver)
            ray.kill(busy)


def connect(address: str) -> Any:
    """Ray, joined to `address` ("auto" or HOST:PORT). RayClusterError in one sentence."""
    host = address.rsplit(":", 1)[0]
    starting = address == "auto" and not RUNNING.is_file() and not os.environ.get("RAY_ADDRESS")
    if starting or host in ("127.0.0.1", "localhost"):
        os.environ.setdefault(LOCAL_ONLY, "0")  # read when Ray is imported
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not starting and "RAY_AUTH_MODE" not in os.environ and has_token():
        os.environ["RAY_AUTH_MODE"] = "token"  # a cluster that asks for the token gets it; one that does not ignores it
    try:
        import ray
    except ImportError:
        raise RayClusterError("--cluster needs Ray: pip install -r requirements.txt") from None
    if ray.is_initialized():
        return ray
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    # workers import ilo_core as the driver does, and see its ILO_* switches
    env = {"PYTHONPATH": path, **{k: v for k, v in os.environ.items() if k.startswith("ILO_")}}
    runtime_env = {"env_vars": env}
    try:
        if starting:
            ray.init(runtime_env=runtime_env, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        else:
            ray.init(address=address, runtime_env=runtime_env, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        hint = " (if a Ray instance of this machine died, `ray stop` clears it)" if address == "auto" else ""
        raise RayClusterError(f"could not join the Ray cluster at {address}: {one_line(err)}{hint}") from None
    return ray


def has_token() -> bool:
    """Whether this machine holds a Ray cluster token (Ray's own places for it)."""
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                or (Path.home() / ".ray" / "auth_token").is_file())


def busy_board(ray: Any) -> Any:
    """A small actor (no CPU of its own) where each cell says where it runs."""

    @ray.remote(num_cpus=0)
    class BusyBoard:
        def __init__(self) -> None:
            self.running: dict[str, str] = {}

        def start(self, key: str, place: str) -> None:
            self.running[key] = place

        def stop(self, key: str) -> None:
            self.running.pop(key, None)

        def snapshot(self) -> dict[str, str]:
            return dict(self.running)

    return BusyBoard.remote()


def run_on_worker(function: CellFunction, cell: Cell, shared: Any, shipped: ShippedGenerator | None,
                  driver_code: str, busy: Any) -> dict:
    """A Ray task: one cell in this worker process."""
    if code_version() != driver_code:
        raise RuntimeError(f"this worker's ilo_core (code {code_version()}) is not the driver's ({driver_code}): "
                           f"install the same ilo-studio on every node")
    busy.start.remote(cell.key, where())
    device = cell_device(cell.resources.gpus)
    index = (shipped.identity if shipped else "", device, bool(shipped and shipped.reference))
    if index not in _CONTEXTS:
        _CONTEXTS[index] = WorkerContext(shipped, device)
    _CONTEXTS[index].say = lambda text: busy.start.remote(cell.key, f"{where()} ({text})")
    try:
        return execute(function, cell, shared, _CONTEXTS[index])
    finally:
        busy.stop.remote(cell.key)
