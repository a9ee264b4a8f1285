"""The sweep report: finished cell folders → report.md, CSV tables, heat-maps, curves,
cells.csv and one self-contained report.html (`python -m miga.report <sweep>`).

Each module has one job, and imports point down this list (never up, never in a circle):

    format.py        the one number formatter and the one Markdown table writer
    cells.py         Cell (one finished cell folder), finding and expanding cells, what keys
                     a cell (varying settings; NEUTRAL ones never), slots and their collisions
    figures.py       heat-maps and the curves' figure style
    sections/        one module per report.md section, each `ORDER` + `sections(cells, out)`:
                     tables (the paper's tables), transfer, curves (with the step-size and
                     ablation tables), sensor, paired, robustness (worst-case robust accuracy
                     per denoiser: the table experiment=robustness is for)
    markdown.py      report.md: header, every section in ORDER, failed and missing cells
    html.py          report.html from templates/report.html.j2 (same numbers, images inlined)
    write.py         the report folder: report.md, cells.csv, report.html
    wandb_log.py     `--wandb`: the cells table and heat-maps as one W&B run
    cli.py           the command line (`__main__.py` runs it)

A new section is one new file in `sections/` (as `sections/robustness.py` was), with `ORDER`
(its place in report.md: robustness is 60, after the paired comparison) and
`sections(cells, out) -> list[str]`; `markdown.py` finds it by itself. It reads cells through
`cells.py`, writes numbers through `format.py` and figures through `figures.py`.
"""

from miga.report.cells import Cell, SlotCollision, find_cells
from miga.report.cli import main
from miga.report.write import write_report

__all__ = ["Cell", "SlotCollision", "find_cells", "main", "write_report"]
