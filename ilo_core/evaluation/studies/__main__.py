"""python -m ilo_core.evaluation.studies [NAME [ARGS]]: list the studies, or run one."""

from ilo_core.evaluation.studies import command

raise SystemExit(command())
