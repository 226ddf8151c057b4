"""The studies behind the defaults are registered: each name imports and has a main, the list
names them all, and an unknown name is one error line (docs/tuning.md says what each decided)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

from ilo_core.evaluation.studies import STUDIES, command

ROOT = Path(__file__).resolve().parents[2]


def test_every_registered_study_is_a_module_with_a_main_and_every_module_is_registered():
    for name in STUDIES:
        assert callable(importlib.import_module(f"ilo_core.evaluation.studies.{name}").main), name
    modules = {p.stem for p in (ROOT / "ilo_core" / "evaluation" / "studies").glob("*.py")} - {"__init__", "__main__"}
    assert modules - set(STUDIES) == {"hole_bench"}  # what the hole studies share, not a study


def test_the_list_and_an_unknown_name(capsys):
    assert command([]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in STUDIES)
    out = subprocess.run([sys.executable, "-m", "ilo_core.evaluation.studies", "nope"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.strip().startswith("error: unknown study 'nope'")
    assert len(out.stderr.strip().splitlines()) == 1
