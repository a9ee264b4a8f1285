"""`python -m miga.report <sweep dir | results glob> [--out DIR] [--wandb]`: the paper's tables.

Reads every cell folder (one with `provenance.json`) under the given directories, and writes,
per metric, a table laid out like the paper (rows: denoisers, columns: datasets) as Markdown and
CSV, a heat-map PNG, and `cells.csv` with one line per cell. A cell is keyed by every setting
that varies across the cells (`varying_keys`: config-group choices and plain overrides alike,
read from each cell's own saved overrides), and there is one table per combination of the
varying settings other than denoiser and dataset (e.g. `budget=l2, noise.sigma=15`), so every
cell has exactly one slot; the settings every cell shares are printed once in the header.
Settings that cannot change a number (logger, resume, paths, …: `miga.report.cells.NEUTRAL`)
key nothing. Two cell folders with the same settings would claim one slot: that is an error
naming both (`SlotCollision`), never a silent overwrite. Cells that started but have no
`summary.json` are listed as failed/incomplete; cells that the sweep defines (its
`multirun.yaml`) but that never started are listed as missing.
"""

from __future__ import annotations

import argparse
import glob
from collections.abc import Sequence
from pathlib import Path

from miga.report.cells import SlotCollision, expected_grid, find_cells, missing_cells
from miga.report.wandb_log import log_to_wandb
from miga.report.write import write_report
from miga.utils.results_dir import PROVENANCE_FILE


def main(argv: Sequence[str] | None = None) -> int:
    """0 when every cell finished and none is missing, 1 otherwise, 2 on a slot collision."""
    parser = argparse.ArgumentParser(prog="python -m miga.report", description=__doc__)
    parser.add_argument("sources", nargs="+", help="sweep directories or globs of cell folders")
    parser.add_argument("--out", type=Path, help="report folder (default: <first source>/report)")
    parser.add_argument("--wandb", choices=["offline", "online"], help="also log to W&B")
    args = parser.parse_args(argv)
    cells = find_cells(args.sources)
    if not cells:
        parser.error(f"no cell folders (with {PROVENANCE_FILE}) under {args.sources}")
    missing = missing_cells(expected_grid(args.sources), cells)
    out = (
        args.out
        or Path(glob.glob(args.sources[0])[0] if glob.glob(args.sources[0]) else args.sources[0])
        / "report"
    )
    try:
        report = write_report(cells, missing, out)
    except SlotCollision as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    if args.wandb:
        log_to_wandb(cells, out, args.wandb)
    print(report.read_text())
    return 0 if all(c.finished for c in cells) and not missing else 1
