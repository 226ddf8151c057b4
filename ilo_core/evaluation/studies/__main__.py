"""python -m ilo_core.evaluation.studies [NAME [ARGS]]: list the studies, or run one."""

from __future__ import annotations

import sys

from ilo_core.evaluation.studies import STUDIES, run

if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "list"):
    for name, about in STUDIES.items():
        print(f"{name:15s} {about}")
    raise SystemExit(0)
raise SystemExit(run(sys.argv[1], sys.argv[2:]))
