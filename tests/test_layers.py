"""The package's layout is the map of its design: imports point down, no circles, small files.

`LAYERS` is the single source of truth for the layering (docs/architecture.md §4 cites it):
a module may import its own layer (without a circle) and any layer below it. Imports are read
from the source with `ast` — module-level and function-level alike, since a function-level
import is how a circle hides — so the test needs no import of the package and runs in a second.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "miga"

#: Bottom to top. A unit is a sub-package (`miga.attacks`) or a top-level module (`miga.run`).
LAYERS: tuple[tuple[str, ...], ...] = (
    # 0: pure helpers (no Lightning callbacks), the one weight-file loader, the version.
    ("miga", "miga.utils", "miga.checkpoints", "miga.conf"),
    # 1: models, each importing only layer 0 (and each other where a model wraps another).
    ("miga.denoisers", "miga.downstream", "miga.defenses", "miga.mi"),
    # 2: threat models: what the attacker controls and what the victim receives.
    ("miga.threats",),
    # 3: the one attack loop, its terms and budgets, one file per attack.
    ("miga.attacks",),
    # 4: scorers, the summary, intervals.
    ("miga.metrics",),
    # 5: datasets, datamodule, embedded demo data.
    ("miga.data",),
    # 6: Lightning callbacks: results writer, image grids, progress, signals.
    ("miga.callbacks",),
    # 7: applications: a cell, the command lines, the report, the Python API.
    (
        "miga.module",
        "miga.run",
        "miga.contracts",
        "miga.report",
        "miga.provenance",
        "miga.train_critic",
        "miga.zoo",
        "miga.api",
        "miga.robust",
    ),
)
#: Imports that may point up a layer (the issue allows at most one): none today.
MAX_UPWARD = 1
MAX_LINES = 400


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted name → file for every module of the package (a package is its `__init__`)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: Iterable[str]) -> set[str]:
    """The package's modules that `name` imports anywhere in its source.

    `from a.b import c` names module `a.b.c` when that is a module, else `a.b` (c is an
    attribute of it); a name that is no module is cut back to the longest module prefix."""
    known = set(known)

    def module_of(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    found = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(module_of(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package upwards
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                full = f"{source}.{alias.name}"
                found.add(full if full in known else module_of(source))
    return {m for m in found if m and m != name and (m == "miga" or m.startswith("miga."))}


def module_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, found) for name, path in found.items()}


def unit(module: str) -> str:
    """The layering's unit of a module: `miga.<first part>`."""
    return ".".join(module.split(".")[:2])


def layer(module: str) -> int:
    """The layer of the unit a module belongs to; an unplaced unit is an error to fix here."""
    for level, units in enumerate(LAYERS):
        if unit(module) in units:
            return level
    raise AssertionError(
        f"{unit(module)} ({module}) has no layer: place it in LAYERS (tests/test_layers.py) "
        "and in docs/architecture.md §4"
    )


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the directed graph as a path a → … → a, or None (iterative DFS)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(step) == 1:
                return path[path.index(step) :] + [step]
            elif step not in state:
                state[step] = 1
                path.append(step)
                stack.append(iter(sorted(graph.get(step, ()))))
    return None


def unit_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    units: dict[str, set[str]] = {}
    for source, targets in graph.items():
        units.setdefault(unit(source), set()).update(
            unit(t) for t in targets if unit(t) != unit(source)
        )
    return units


# --- the checker, on hand-made graphs: each rule can fail --------------------------------------


def test_the_cycle_finder_finds_a_circle_and_only_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond
    assert find_cycle({"a": set(), "b": {"b"}}) == ["b", "b"]


def test_imports_are_read_at_every_depth_and_resolved_to_modules(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import miga.utils.seeding as s\n"
        "from miga.attacks import base\n"  # a module: miga.attacks.base
        "from miga.attacks.state import StepState\n"  # an attribute: miga.attacks.state
        "from . import noise\n"  # relative, in miga.threats
        "def late():\n    from miga.metrics.scorers import Outcome\n"  # function level
        "import torch\n"
    )
    known = {
        "miga.utils.seeding",
        "miga.attacks",
        "miga.attacks.base",
        "miga.attacks.state",
        "miga.threats",
        "miga.threats.noise",
        "miga.metrics.scorers",
    }
    assert imports("miga.threats.sensor", source, known) == {
        "miga.utils.seeding",
        "miga.attacks.base",
        "miga.attacks.state",
        "miga.threats.noise",
        "miga.metrics.scorers",
    }


# --- the package --------------------------------------------------------------------------------


def test_the_reader_sees_the_package_s_known_imports() -> None:
    """A guard on the reader itself: edges known to exist are found."""
    graph = module_graph()
    assert "miga.attacks.base" in graph["miga.module"]
    assert "miga.threats.noise" in graph["miga.threats.sensor"]
    assert "miga.utils.images" in graph["miga.metrics.quality"]


def test_every_module_has_a_layer() -> None:
    for name in module_graph():
        layer(name)


def test_no_import_circle_among_modules() -> None:
    cycle = find_cycle(module_graph())
    assert cycle is None, "import circle: " + " → ".join(cycle)


def test_no_import_circle_among_sub_packages() -> None:
    cycle = find_cycle(unit_graph(module_graph()))
    assert cycle is None, "import circle between units: " + " → ".join(cycle)


def test_imports_point_down_the_layers() -> None:
    upward = sorted(
        f"{source} (layer {layer(source)}) → {target} (layer {layer(target)})"
        for source, targets in module_graph().items()
        for target in targets
        if layer(target) > layer(source)
    )
    assert len(upward) <= MAX_UPWARD, "imports pointing up a layer:\n" + "\n".join(upward)


def test_no_module_over_400_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE.parent)): count
        for path in modules().values()
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"
