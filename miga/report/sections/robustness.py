"""Worst-case robustness (`experiment=robustness`): the table a researcher cites.

Cells scored by an attack ensemble (`attack=worst_case`, whose summary holds
`robust_accuracy`) make one row per denoiser (and per any other setting the sweep varies,
epsilon aside): the denoiser's own fidelity and accuracy on D(x_n), then its robust accuracy at
each epsilon with its Wilson interval, and at the largest epsilon the fidelity of D(x_n+δ) and
which member broke how many images. Rows are sorted by robust accuracy at the largest epsilon
(4/255 in experiment=robustness), **most robust first**, ties by the smaller epsilons, then by
name. A second table gives every (row, epsilon) in full, and `robustness.csv` one line per
cell with the summary values themselves (no rounding), so the table can be re-derived.

Why the broken-by column: a robust accuracy is only as good as the strongest member; naming
the member that broke the images says whether the paper's attack (MIGA) or a baseline did the
work, and a break by a gradient-free member after every gradient member missed
(`n_masked_gradient`) says the gradients were masked — the number would overstate robustness
without that member, and the table says so under it.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from miga.metrics.summary import CI_SUFFIX
from miga.report.cells import EPSILON, ROW_KEY, Cell, key_of, place, sweep_keys
from miga.report.format import (
    MISSING,
    compact,
    is_missing,
    label,
    markdown_table,
    number,
    sortable,
    summary_value,
)

ORDER = 60

#: The summary key that marks a cell as scored by an ensemble, and its row's sort value.
KEY = "robust_accuracy"
#: Per-member break counts in the summary (`broken_by_<member>`, miga.metrics.summary).
BROKEN_PREFIX = "broken_by_"
MASKED = "n_masked_gradient"
CSV_FILE = "robustness.csv"
#: Summary values robustness.csv carries for every cell (then the broken_by_ counts).
CSV_VALUES = (
    "n_images",
    "acc_denoised",
    "psnr_denoised",
    KEY,
    "acc_attacked",
    "psnr_attacked",
    MASKED,
)

Key = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Row:
    """One table row: the settings that name it and its cells by epsilon (ascending)."""

    key: Key
    cells: tuple[tuple[float, Cell], ...]

    def at(self, epsilon: float) -> Mapping[str, object]:
        """The summary of the cell at `epsilon` (empty where the row has none)."""
        found = dict(self.cells).get(epsilon)
        return found.summary if found is not None else {}


@dataclass(frozen=True)
class Robustness:
    """The section's content, shared by report.md, report.html and robustness.csv."""

    keys: list[str]  # the settings naming a row (denoiser first)
    epsilons: list[float]  # ascending; the last one sorts the rows
    rows: list[Row]  # sorted, most robust first

    @property
    def sort_epsilon(self) -> float:
        return self.epsilons[-1]


def epsilon_of(cell: Cell) -> float:
    """The cell's L-inf budget as a number (NaN where it records none)."""
    value = sortable(cell.setting(EPSILON))
    return value if math.isfinite(value) else math.nan


def epsilon_label(epsilon: float) -> str:
    """`4/255` where the budget is a whole number of grey levels (an 8-bit file's budgets),
    else the number."""
    if math.isnan(epsilon):
        return MISSING
    levels = epsilon * 255
    if levels > 0 and abs(levels - round(levels)) < 1e-6:
        return f"{round(levels)}/255"
    return number(epsilon, compact)


def broken_by(summary: Mapping[str, object]) -> str:
    """`miga 12, square 1`: images each member broke, most first (none: `none`), and the
    masked-gradient count where there is one."""
    counts = sorted(
        (
            (k[len(BROKEN_PREFIX) :], int(v))
            for k, v in summary.items()
            if k.startswith(BROKEN_PREFIX)
        ),
        key=lambda item: (-item[1], item[0]),
    )
    text = ", ".join(f"{name} {count}" for name, count in counts if count) or "none"
    masked = summary.get(MASKED)
    if not is_missing(masked) and int(masked) > 0:
        text += f" ({int(masked)} masked gradient)"
    return text


def robustness(cells: Sequence[Cell]) -> Robustness | None:
    """The rows of the table from the finished cells holding `robust_accuracy` (None: none).

    Raises SlotCollision when two cells have one row and one epsilon."""
    scored = [c for c in cells if c.finished and KEY in c.summary]
    if not scored:
        return None
    keys = [ROW_KEY, *[k for k in sweep_keys(scored) if k not in (ROW_KEY, EPSILON)]]
    placed = place(scored, lambda c: (key_of(c, keys), epsilon_of(c)), "the robustness table")
    by_row: dict[Key, list[tuple[float, Cell]]] = {}
    for (key, epsilon), cell in placed.items():
        by_row.setdefault(key, []).append((epsilon, cell))
    epsilons = sorted({e for _, e in placed}, key=_epsilon_order)
    rows = [
        Row(k, tuple(sorted(v, key=lambda item: _epsilon_order(item[0]))))
        for k, v in by_row.items()
    ]

    def most_robust_first(row: Row) -> tuple:
        values = [sortable(row.at(e).get(KEY)) for e in reversed(epsilons)]
        return (*[-v for v in values], label(row.key))

    return Robustness(keys, epsilons, sorted(rows, key=most_robust_first))


def _epsilon_order(epsilon: float) -> float:
    return -math.inf if math.isnan(epsilon) else epsilon


def main_table(table: Robustness) -> tuple[list[str], list[list[str]]]:
    """One row per denoiser: fidelity, accuracy, robust accuracy per epsilon, and at the
    largest epsilon PSNR(D(x_n+δ), x) and the breaks by member."""
    top = epsilon_label(table.sort_epsilon)
    header = [
        *table.keys,
        "PSNR(D(x_n), x) dB",
        "acc on D(x_n)",
        *[f"robust acc, ε={epsilon_label(e)}" for e in table.epsilons],
        f"PSNR(D(x_n+δ), x) dB, ε={top}",
        f"broken by, ε={top}",
    ]
    body = []
    for row in table.rows:
        # D(x_n) does not depend on epsilon: read at the sorting budget, else the largest one
        base = row.at(table.sort_epsilon) or row.cells[-1][1].summary
        top_summary = row.at(table.sort_epsilon)
        body.append(
            [
                *[v for _, v in row.key],
                number(base.get("psnr_denoised"), compact),
                summary_value(base, "acc_denoised"),
                *[summary_value(row.at(e), KEY) for e in table.epsilons],
                number(top_summary.get("psnr_attacked"), compact),
                broken_by(top_summary) if top_summary else MISSING,
            ]
        )
    return header, body


def detail_table(table: Robustness) -> tuple[list[str], list[list[str]]]:
    """Every (row, epsilon): images, robust accuracy, accuracy and PSNR on D(x_n+δ), breaks."""
    header = [
        *table.keys,
        "ε",
        "images",
        "robust acc",
        "acc on D(x_n+δ)",
        "PSNR(D(x_n+δ), x) dB",
        "broken by",
    ]
    body = [
        [
            *[v for _, v in row.key],
            epsilon_label(epsilon),
            number(cell.summary.get("n_images"), lambda v: f"{v:.0f}"),
            summary_value(cell.summary, KEY),
            summary_value(cell.summary, "acc_attacked"),
            number(cell.summary.get("psnr_attacked"), compact),
            broken_by(cell.summary),
        ]
        for row in table.rows
        for epsilon, cell in row.cells
    ]
    return header, body


def masked_notes(table: Robustness) -> list[str]:
    """One sentence per cell where a gradient-free member broke what every gradient member
    missed."""
    notes = []
    for row in table.rows:
        for epsilon, cell in row.cells:
            masked = cell.summary.get(MASKED)
            if not is_missing(masked) and int(masked) > 0:
                notes.append(
                    f"{label(row.key)}, ε={epsilon_label(epsilon)}: {int(masked)} image(s) "
                    "broken only by a gradient-free member after every gradient member missed "
                    "them — masked gradients; without that member the robust accuracy would "
                    "be overstated."
                )
    return notes


def write_csv(table: Robustness, path: Path) -> Path:
    """One line per cell, in the table's order: its row settings, epsilon, the summary values
    (CSV_VALUES, the interval's bounds, every member's break count, 0 where it broke none)."""
    members = sorted(
        {
            k[len(BROKEN_PREFIX) :]
            for row in table.rows
            for _, cell in row.cells
            for k in cell.summary
            if k.startswith(BROKEN_PREFIX)
        }
    )
    header = [
        *table.keys,
        "epsilon",
        "epsilon_255",
        *CSV_VALUES,
        f"{KEY}{CI_SUFFIX}_low",
        f"{KEY}{CI_SUFFIX}_high",
        *[BROKEN_PREFIX + m for m in members],
        "path",
    ]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in table.rows:
            for epsilon, cell in row.cells:
                summary = cell.summary
                low, high = summary.get(KEY + CI_SUFFIX) or ("", "")
                writer.writerow(
                    [
                        *[v for _, v in row.key],
                        "" if math.isnan(epsilon) else epsilon,
                        "" if math.isnan(epsilon) else epsilon * 255,
                        *[summary.get(k, "") for k in CSV_VALUES],
                        low,
                        high,
                        *[summary.get(BROKEN_PREFIX + m, 0) for m in members],
                        cell.path,
                    ]
                )
    return path


INTRO = (
    "Robust accuracy: the share of the images D(x_n) classifies correctly that no member of "
    "the ensemble broke (attack=worst_case: members in order, each on the survivors); times "
    "the accuracy on D(x_n) it is the accuracy under attack over all images. Brackets: 95 % "
    "Wilson intervals. Rows: most robust first, by robust accuracy at ε={top}. Broken by: how "
    "many images each member broke first (a later member only sees what the earlier ones "
    "missed)."
)


def sections(cells: Sequence[Cell], out: Path) -> list[str]:
    """The report.md section and `out/robustness.csv` (nothing when no cell has a robust
    accuracy)."""
    table = robustness(cells)
    if table is None:
        return []
    write_csv(table, out / CSV_FILE)
    intro = INTRO.format(top=epsilon_label(table.sort_epsilon))
    notes = masked_notes(table)
    masked = "\n\n" + "\n".join(f"- {n}" for n in notes) if notes else ""
    return [
        "## Worst-case robustness\n\n"
        + intro
        + "\n\n"
        + markdown_table(*main_table(table))
        + masked
        + f"\n\nPer budget (every cell; `{CSV_FILE}` holds the unrounded values):\n\n"
        + markdown_table(*detail_table(table))
        + "\n"
    ]
