"""The report's Markdown tables: values with the intervals `summary.json` carries."""

from __future__ import annotations

from pathlib import Path

from miga.metrics.intervals import wilson
from miga.report import Cell, write_report


def _cell(tmp: Path, denoiser: str, successes: int, n: int, with_ci: bool = True) -> Cell:
    summary: dict = {"n_images": n, "success_rate": successes / n}
    if with_ci:
        summary["success_rate_ci95"] = list(wilson(successes, n))
    choices = {"denoiser": denoiser, "dataset": "demo", "attack": "miga"}
    return Cell(path=tmp / denoiser, choices=choices, summary=summary, rows_done=n)


def test_markdown_tables_print_each_value_with_its_interval(tmp_path: Path) -> None:
    cells = [_cell(tmp_path, "demo", 11, 14), _cell(tmp_path, "dncnn", 14, 14, with_ci=False)]
    report = write_report(cells, [], tmp_path / "report").read_text()
    lo, hi = wilson(11, 14)
    assert f"| demo | {11 / 14:.3f} [{lo:.3f}, {hi:.3f}] |" in report
    assert "| dncnn | 1.000 |" in report  # an older summary without intervals: the value alone
