"""Where a job stands: cells done, failed and left, time left at this run's pace, busy workers."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class JobProgress:
    """Counts of one run of a job (`recorded`: done in an earlier run, not run again)."""

    total: int
    recorded: int = 0
    done: int = 0
    failed: int = 0
    started: float = field(default_factory=time.perf_counter)
    busy: dict[str, str] = field(default_factory=dict)  # cell label -> where it runs
    listener: Callable[["JobProgress"], None] | None = field(default=None, repr=False)

    def changed(self) -> None:
        """Tell the listener (the CLI's bar) that something moved."""
        if self.listener is not None:
            self.listener(self)

    @property
    def finished(self) -> int:
        return self.recorded + self.done + self.failed

    @property
    def ran(self) -> int:
        """Cells this run finished (done or failed)."""
        return self.done + self.failed

    def seconds_left(self) -> float | None:
        """At this run's pace (wall seconds per finished cell, however many run at once)."""
        if not self.ran:
            return None
        return (time.perf_counter() - self.started) / self.ran * (self.total - self.finished)

    def workers(self) -> str:
        """'2 busy: 127.0.0.1:4211, 127.0.0.1:4212' (where the running cells are)."""
        places = sorted(set(self.busy.values()))
        return f"{len(self.busy)} busy" + (f": {', '.join(places)}" if places else "")


class CellBar:
    """tqdm on stderr: cells done / total, failures, time left, busy workers."""

    def __init__(self) -> None:
        self.bar = None

    def update(self, progress: JobProgress) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=progress.total, file=sys.stderr, unit="cell", desc="cells")
        self.bar.n = progress.finished
        left = progress.seconds_left()
        self.bar.set_postfix_str(f"failed {progress.failed}, {progress.workers()}"
                                 + ("" if left is None else f", ~{left:.0f}s left"), refresh=False)
        self.bar.refresh()

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
