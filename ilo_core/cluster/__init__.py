"""Jobs as cells: a cell is a pure function of its spec (spec -> record), a job is a list of
cells, and one runner runs them in this process or on a Ray cluster, writing each finished
cell's record whole as it arrives, keyed by a hash of its spec, so that a job stopped anywhere
runs only its missing cells next time (docs/evaluation/cluster.md).

    from ilo_core.cluster import Cell, RecordStore, run_cells
    store = RecordStore(out / "records", files_root=out)
    runner = in_process(WorkerContext(None, "cpu", generator))   # or ray_cluster("auto", shipped)
    for event in run_cells(cells, function, store, runner):
        ...

`ray_cluster` imports Ray only when it is asked for: the in-process back end needs no Ray.
"""

from ilo_core.cluster.backends import CellEvent, Runner, in_process, ray_cluster, run_cells
from ilo_core.cluster.cells import Cell, Resources, code_version, one_line
from ilo_core.cluster.records import RecordStore
from ilo_core.cluster.shipping import ShippedGenerator, WorkerContext

__all__ = ["Cell", "CellEvent", "RecordStore", "Resources", "Runner", "ShippedGenerator", "WorkerContext",
           "code_version", "in_process", "one_line", "ray_cluster", "run_cells"]
