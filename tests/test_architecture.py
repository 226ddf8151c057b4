"""The house in wings (docs/architecture.md): every module imports only from a floor below its
own or from its own room, so no import circle can form; the engine never imports gradio; no
model family is asked for by name outside the generators."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ilo_core"

# room (a module or a package prefix) -> floor; the longest matching prefix names a module's room
FLOORS = {
    "ilo_core.atomic": 0,                                            # files written whole
    "ilo_core.generators": 1, "ilo_core.perceptual.weights": 1,      # the plain models and their weights
    "ilo_core.physics.operators": 1, "ilo_core.physics.metrics": 1,
    "ilo_core.perceptual.network": 2,
    "ilo_core.accelerate": 3,                                        # the fast forms of the plain models
    "ilo_core.checkpoints": 4, "ilo_core.perceptual.distance": 4,    # the factories that build them fast
    "ilo_core.physics.problems": 5, "ilo_core.cluster": 5,          # problems; cells, their records and runners
    "ilo_core.engine": 6, "ilo_core.photo": 6,                       # Algorithm 1 and its answer; the photo
    "ilo_core.sequences": 7,                                         # folders and clips: many photos, one job
    "ilo_core.evaluation": 8, "ilo_core.frontends": 8,               # what people and studies run
    "ilo_core.__main__": 9, "ilo_core": 9,                           # the public API
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    return max((r for r in FLOORS if module == r or module.startswith(r + ".")), key=len)


def imports() -> dict[str, set[str]]:
    """module -> the ilo_core modules it imports (anywhere in the file, lazy imports too)."""
    known = {module_name(p) for p in PACKAGE.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ilo_core"):
                for alias in node.names:
                    child = f"{node.module}.{alias.name}"
                    found.add(child if child in known else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("ilo_core")}
        out[module_name(path)] = found - {module_name(path)}
    return out


def test_every_import_goes_down_a_floor_or_stays_in_its_room():
    wrong = []
    for module, targets in imports().items():
        mine = room(module)
        for target in targets:
            theirs = room(target)
            if theirs != mine and not FLOORS[theirs] < FLOORS[mine] and theirs != "ilo_core":
                wrong.append(f"{module} (floor {FLOORS[mine]}) -> {target} (floor {FLOORS[theirs]})")
    assert not wrong, "imports that go up or across a floor:\n" + "\n".join(sorted(wrong))


def test_there_is_no_import_circle():
    graph = imports()
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in graph.get(module, ()):
            if state.get(target) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(target):] + [target]))
            if target in graph and not state.get(target):
                visit(target, path + [target])
        state[module] = 2

    for module in graph:
        if not state.get(module):
            visit(module, [module])


def test_every_module_has_a_room():
    for module in imports():
        assert room(module) in FLOORS


def test_no_model_family_is_asked_for_by_name_outside_the_generators():
    """Tuning is declared by each generator (`Tuning`, `face_frame`, `nonnegative_state`)."""
    found = []
    for path in [*PACKAGE.rglob("*.py"), ROOT / "app.py"]:
        if path.is_relative_to(PACKAGE / "generators") or path.is_relative_to(PACKAGE / "checkpoints"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn))
                                                     for op in node.ops):
                sides = [node.left, *node.comparators]
                if any(isinstance(s, ast.Attribute) and s.attr == "kind" for s in sides) and \
                        any(isinstance(s, ast.Constant) and s.value in ("dcgan", "stylegan2") for s in sides):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found
