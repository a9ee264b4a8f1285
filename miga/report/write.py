"""The report folder: report.md with its tables, heat-maps and curves, cells.csv, report.html."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from miga.report.cells import DEFAULT, Cell, check_unique, recorded_keys
from miga.report.html import write_html
from miga.report.markdown import render_markdown


def write_report(cells: Sequence[Cell], missing: Sequence[dict], out: Path) -> Path:
    """Tables (md, csv), heat-maps, curves, cells.csv and report.html under `out`; returns the
    report.md path.

    Raises SlotCollision (before writing anything) when two cells have the same settings."""
    check_unique(cells)
    out.mkdir(parents=True, exist_ok=True)
    text = render_markdown(cells, missing, out)
    write_cells_csv(cells, out / "cells.csv")
    report = out / "report.md"
    report.write_text(text)
    write_html(cells, missing, out)  # the same numbers as one self-contained page
    return report


def summary_keys(cells: Sequence[Cell]) -> list[str]:
    """Every summary key of any finished cell, sorted: the metric columns of a cells table."""
    return sorted({k for c in cells if c.finished for k in c.summary})


def write_cells_csv(cells: Sequence[Cell], path: Path) -> None:
    """One line per cell: its folder, status, every recorded setting and every summary value."""
    keys, metrics = recorded_keys(cells), summary_keys(cells)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "status", *keys, *metrics])
        for c in cells:
            summary = c.summary or {}
            writer.writerow(
                [
                    c.path,
                    "finished" if c.finished else "incomplete",
                    *[c.recorded.get(k, DEFAULT) for k in keys],
                    *[summary.get(m, "") for m in metrics],
                ]
            )
