"""`report.md`: the header (cell counts, what varies, what every cell shares), every section in
its ORDER (`miga.report.sections`), then the failed and missing cells."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from miga.report.cells import Cell, constants, sweep_keys
from miga.report.format import label
from miga.report.sections import section_modules


def render_markdown(cells: Sequence[Cell], missing: Sequence[dict], out: Path) -> str:
    """The report's Markdown; the sections' CSVs and PNGs are written under `out` on the way."""
    parts = [
        f"# miga report\n\n{sum(c.finished for c in cells)} finished cells, "
        f"{sum(not c.finished for c in cells)} failed or incomplete, "
        f"{len(missing)} missing.\n",
        f"Varying across the cells: {', '.join(sweep_keys(cells)) or '—'}.\n",
        f"The same in every cell: {label(constants(cells)) or '—'}.\n",
    ]
    for module in section_modules():
        parts += module.sections(cells, out)
    problems = [
        f"- failed/incomplete: `{c.path}` ({c.rows_done} rows written)"
        for c in cells
        if not c.finished
    ]
    problems += [f"- missing: {label(m)}" for m in missing]
    if problems:
        parts.append("## Missing or failed cells\n\n" + "\n".join(problems) + "\n")
    return "\n".join(parts)
