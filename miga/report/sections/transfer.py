"""Transfer matrices: rows the model the attack went through, columns the model that scored it.

A transfer sweep (`experiment=transfer`) varies `denoiser` (the victim) and
`denoiser@surrogate.denoiser` (what the attack optimised through); a cell without a surrogate,
or with the victim's own, is white-box and lands on the diagonal. Classifier transfer is the
same with `downstream` and `downstream@surrogate.downstream`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from miga.metrics.summary import CI_SUFFIX
from miga.report.cells import Cell, key_of, place, slug, sweep_keys
from miga.report.figures import heatmap
from miga.report.format import grid_table, label

ORDER = 20

#: (victim key, surrogate key) of each kind of transfer
PAIRS = (
    ("denoiser", "denoiser@surrogate.denoiser"),
    ("downstream", "downstream@surrogate.downstream"),
)
METRICS = ("success_rate", "stealth_success_rate", "psnr_attacked")
UNSET = ("None", "null", "", None)


def attacked_through(cell: Cell, victim: str, surrogate: str) -> str:
    """The model the attack optimised through: the surrogate's choice, else the victim's."""
    value = cell.choices.get(surrogate)
    return cell.choices.get(victim, "?") if value in UNSET else value


def _slot(cell: Cell, victim: str, surrogate: str) -> tuple[str, str]:
    return attacked_through(cell, victim, surrogate), cell.choices.get(victim, "?")


def sections(cells: Sequence[Cell], out: Path) -> list[str]:
    """Markdown sections with the matrices, and one heat-map PNG per matrix and metric."""
    parts = []
    for victim, surrogate in PAIRS:
        varied = [c for c in cells if c.finished and c.choices.get(surrogate) not in UNSET]
        if not varied:
            continue
        # One matrix per combination of every other setting that varies across the sweep.
        keys = [k for k in sweep_keys(cells) if k not in (victim, surrogate)]
        groups: dict[tuple[tuple[str, str], ...], list[Cell]] = {}
        for cell in (c for c in cells if c.finished):
            groups.setdefault(key_of(cell, keys), []).append(cell)
        for context, group in sorted(groups.items()):
            if not any(c.choices.get(surrogate) not in UNSET for c in group):
                continue
            title = label(context) or "all cells"
            stem = f"{victim}_{slug(context)}"
            # the diagonal is reachable twice (no surrogate, or the victim's own): an error
            slot = functools.partial(_slot, victim=victim, surrogate=surrogate)
            placed = place(group, slot, f"the {victim} transfer matrix")
            parts.append(f"## Transfer of {victim}s ({title})\n")
            parts.append(
                f"Rows: the {victim} the attack optimised through; columns: the {victim} that "
                "scored the rows. Diagonal: white-box.\n"
            )
            for metric in METRICS:
                values = {slot: c.summary.get(metric) for slot, c in placed.items()}
                if not any(v is not None for v in values.values()):
                    continue
                cis = intervals_by(group, metric, victim, surrogate)
                names = sorted({name for pair in values for name in pair})
                parts.append(grid_table(metric, names, names, values, cis) + "\n")
                heatmap(
                    out / f"transfer_{metric}__{stem}.png",
                    f"transfer of {victim}s (rows: attacked through, columns: scored by), {title}",
                    names,
                    names,
                    values,
                    metric=metric,
                )
    return parts


def intervals_by(cells: Sequence[Cell], metric: str, victim: str, surrogate: str) -> dict:
    """(attacked through, scored by) → the cell's 95 % interval of `metric`, where it has one."""
    return {
        _slot(c, victim, surrogate): ci
        for c in cells
        if (ci := c.summary.get(metric + CI_SUFFIX)) is not None
    }
