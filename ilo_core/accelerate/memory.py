"""Keep freed memory in the process, so that large tensors do not page-fault on every step.

glibc's malloc hands every block over 32 MB straight back to the kernel when it is freed,
and a new block of that size costs one page fault per 4 KB when it is first written. At
1024 px a StyleGAN-2 pass allocates and frees tens of such tensors (a [1, 32, 1024, 1024]
float32 map is 128 MB), so on CPU a pass spent more time in page faults than in arithmetic
(docs/benchmark.md has the figures). Raising malloc's mmap and
trim thresholds keeps that memory for reuse; one arena makes threads (a web server's
workers) share it. The process then keeps its peak size instead of shrinking after a run.

Linux/glibc only; elsewhere, or with ILO_KEEP_FREED_MEMORY=0, nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8


def keep_freed_memory() -> bool:
    """Tune glibc's malloc for this process (idempotent, cheap). Returns whether it is in effect.

    Call it early, before worker threads start: a thread that already has its own arena
    keeps it.
    """
    if os.environ.get("ILO_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((M_MMAP_THRESHOLD, 1 << 30), (M_TRIM_THRESHOLD, (1 << 31) - 1), (M_ARENA_MAX, 1))
    return all([mallopt(option, value) == 1 for option, value in settings])
