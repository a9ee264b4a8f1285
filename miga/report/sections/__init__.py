"""The report's sections, one module each, in report.md in the order of their `ORDER`.

A section module defines `ORDER: int` (its place in report.md) and
`sections(cells: Sequence[Cell], out: Path) -> list[str]` (its Markdown blocks, empty when the
sweep holds nothing for it; figures and CSVs it draws go under `out`). It reads cells through
`miga.report.cells` and writes numbers through `miga.report.format` / `miga.report.figures`,
never through another section or a renderer. The renderers find the modules here by
themselves (`section_modules`), so a new section is one new file in this folder.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def section_modules() -> list[ModuleType]:
    """Every section module of this package, ordered by its ORDER."""
    modules = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
    ]
    for module in modules:
        if not isinstance(getattr(module, "ORDER", None), int) or not callable(
            getattr(module, "sections", None)
        ):
            raise TypeError(
                f"{module.__name__} ({module.__file__}): a report section defines ORDER (an int, "
                "its place in report.md) and sections(cells, out) -> list[str]"
            )
    return sorted(modules, key=lambda m: (m.ORDER, m.__name__))
