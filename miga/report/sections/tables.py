"""The paper's tables: per metric, rows the denoisers, columns the datasets, one table per
combination of the other varying settings; each as Markdown, as CSV and as a heat-map PNG.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from miga.metrics.summary import CI_SUFFIX
from miga.report.cells import COLUMN_KEY, ROW_KEY, Cell, place, section_title, slug
from miga.report.cells import sections as by_section
from miga.report.figures import heatmap
from miga.report.format import grid_table, number

ORDER = 10
METRICS = (
    "acc_denoised",
    "acc_attacked",
    "success_rate",
    "stealth_success_rate",
    "sensor_success_rate",
    "psnr_denoised",
    "psnr_attacked",
    "ssim_attacked",
    "linf_max",
    "l2_mean",
)


def slot(cell: Cell) -> tuple[str, str]:
    """The cell's (row, column) in a paper table."""
    return cell.choices.get(ROW_KEY, "?"), cell.choices.get(COLUMN_KEY, "?")


def table(cells: Sequence[Cell], metric: str) -> tuple[list[str], list[str], dict]:
    """Rows (denoisers), columns (datasets) and values of `metric` over finished cells (of one
    section: two of them in one slot raise SlotCollision)."""
    rows = sorted({slot(c)[0] for c in cells})
    columns = sorted({slot(c)[1] for c in cells})
    placed = place((c for c in cells if c.finished), slot, f"the {metric} table")
    values = {key: cell.summary.get(metric) for key, cell in placed.items()}
    return rows, columns, values


def intervals(cells: Sequence[Cell], metric: str) -> dict:
    """(row, column) → the cell's 95 % interval of `metric` (`<metric>_ci95`), where it has one."""
    return {
        slot(c): ci
        for c in cells
        if c.finished and (ci := c.summary.get(metric + CI_SUFFIX)) is not None
    }


def filled_tables(cells: Sequence[Cell]) -> list[tuple[str, list[str], list[str], dict, dict]]:
    """(metric, rows, columns, values, intervals) of every metric some of these cells (one
    section) have a value of: what report.md and report.html both show."""
    tables = []
    for metric in METRICS:
        rows, columns, values = table(cells, metric)
        if any(v is not None for v in values.values()):
            tables.append((metric, rows, columns, values, intervals(cells, metric)))
    return tables


def heatmap_path(out: Path, metric: str, key: Sequence[tuple[str, str]]) -> Path:
    return out / f"{metric}__{slug(key)}.png"


def sections(cells: Sequence[Cell], out: Path) -> list[str]:
    """One `## <section>` block per section with its tables; CSV and PNG per table under `out`."""
    parts: list[str] = []
    for key, group in by_section(cells):
        title = section_title(key)
        parts.append(f"## {title}\n")
        for metric, rows, columns, values, cis in filled_tables(group):
            parts.append(grid_table(metric, rows, columns, values, cis) + "\n")
            with open(out / f"{metric}__{slug(key)}.csv", "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow([metric, *columns])
                writer.writerows(
                    [[r, *[number(values.get((r, c))) for c in columns]] for r in rows]
                )
            heatmap(heatmap_path(out, metric, key), title, rows, columns, values, metric=metric)
    return parts
