"""`python -m ilo_core solve ...`: the command-line interface (see ilo_core/frontends/cli.py)."""

from ilo_core.frontends.cli import main

raise SystemExit(main())
