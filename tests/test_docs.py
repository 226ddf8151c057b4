"""The docs a newcomer reads agree with the code: docs/cli.md names every flag of the CLI, the
evaluation and the page, the README's links lead somewhere, and its Python example runs."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from ilo_core.evaluation import evaluate
from ilo_core.frontends.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def flags(parser: argparse.ArgumentParser) -> set[str]:
    out = {opt for action in parser._actions for opt in action.option_strings if opt.startswith("--")}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out |= flags(sub)
    return out - {"--help"}


def test_docs_cli_names_every_flag_of_the_cli_and_the_page():
    import app

    text = (ROOT / "docs" / "cli.md").read_text()
    page = flags(app.build_parser())
    evaluation = flags(evaluate.parser())
    missing = sorted(f for f in flags(build_parser()) | page | evaluation if f"`{f}" not in text and f"[{f}" not in text)
    assert not missing, f"flags docs/cli.md does not name: {missing}"


def test_the_readme_is_a_front_door_whose_links_lead_somewhere():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 140
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


def test_the_readmes_python_example_runs(tmp_path, monkeypatch):
    """The README's Python quick start, as written, on a photo made here."""
    pytest.importorskip("dlib")
    import numpy as np
    from PIL import Image

    face = np.asarray(Image.open(ROOT / "assets" / "faces" / "astronaut_face.png").convert("RGB"))
    photo = np.full((360, 420, 3), 118, np.uint8)
    photo[60:316, 110:366] = face
    hole = np.zeros(photo.shape[:2], np.uint8)
    hole[140:175, 150:330] = 255
    Image.fromarray(photo).save(tmp_path / "me.jpg")
    Image.fromarray(hole).save(tmp_path / "hole.png")
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    code = code.replace('steps=None', 'steps=[2, 2, 2, 2]')
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # the README's own example, as written
    repaired = np.asarray(Image.open(tmp_path / "repaired.png"))
    decoded = np.asarray(Image.open(tmp_path / "me.jpg").convert("RGB"))
    assert repaired.shape == decoded.shape
    assert np.array_equal(repaired[:40, :40], decoded[:40, :40])  # far from the hole: the photo's own pixels
    assert not np.array_equal(repaired[140:175, 150:330], decoded[140:175, 150:330])  # the hole: repaired
