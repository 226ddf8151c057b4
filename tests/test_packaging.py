"""The package's declarations agree with what the code needs: pyproject.toml and
requirements.txt name the same packages, every third-party import is declared, the commands
point at functions that exist, and `ilo_core` is importable without gradio."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORT_NAMES = {"pillow": "PIL", "opencv-python-headless": "cv2", "dlib-bin": "dlib", "gradio_client": "gradio_client",
                "face-recognition-models": "face_recognition_models"}


def requirement_names(lines: list[str]) -> set[str]:
    return {re.split(r"[<>=\s;\[]", line.strip(), maxsplit=1)[0].lower() for line in lines
            if line.strip() and not line.lstrip().startswith("#")}


def test_pyproject_and_requirements_name_the_same_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = requirement_names(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared |= requirement_names(extra)
    assert declared == requirement_names((ROOT / "requirements.txt").read_text().splitlines())


def test_every_third_party_import_is_declared():
    declared = requirement_names((ROOT / "requirements.txt").read_text().splitlines())
    modules = {IMPORT_NAMES.get(name, name).replace("-", "_") for name in declared}
    local = {"ilo_core", "app", "conftest", "reference_data", "lpips_oracle", "scripts"} | \
        {p.stem for p in (ROOT / "tests").rglob("*.py")}
    missing = set()
    for path in [*ROOT.joinpath("ilo_core").rglob("*.py"), ROOT / "app.py", *ROOT.joinpath("tests").rglob("*.py"),
                 *ROOT.joinpath("scripts").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local and top not in modules:
                    missing.add(f"{top} ({path.relative_to(ROOT)})")
    assert not missing, f"imported but not in requirements.txt: {sorted(missing)}"


def test_the_console_scripts_name_functions_that_exist():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for command, target in scripts.items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), command


def test_the_engine_imports_without_gradio():
    code = ("import sys, importlib, pkgutil, ilo_core\n"
            "for m in pkgutil.walk_packages(ilo_core.__path__, 'ilo_core.'):\n"
            "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] == 'gradio'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
