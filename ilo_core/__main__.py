"""`python -m ilo_core solve ...`: the command-line interface (see ilo_core/cli.py)."""

from ilo_core.cli import main

raise SystemExit(main())
