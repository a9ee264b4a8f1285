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


def test_the_expected_grid_expands_globs_ranges_and_lists_as_hydra_does(tmp_path) -> None:
    """A sweep's cells from its multirun.yaml: `glob(…)` over the group's files in the
    sweep's config dir (so experiment=baselines needs no hand-kept list of attacks), choice
    lists, `range(…)`, and command-line lists replacing the YAML's."""
    from omegaconf import OmegaConf

    from miga.report.cells import expected_grid
    from tests.conftest import CONF

    record = {
        "hydra": {
            "sweeper": {
                "params": {"attack": "glob(*,exclude=[miga_unknown,none])", "seed": "range(0,2)"}
            },
            "overrides": {"task": ["budget.epsilon=0.1,0.2", "logger=none"]},
            "runtime": {
                "config_sources": [{"path": str(CONF), "schema": "file", "provider": "main"}]
            },
        }
    }
    OmegaConf.save(OmegaConf.create(record), tmp_path / "multirun.yaml")
    grid = expected_grid([str(tmp_path)])
    attacks = sorted(p.stem for p in (CONF / "attack").glob("*.yaml"))
    attacks = [a for a in attacks if a not in ("miga_unknown", "none")]
    assert len(grid) == len(attacks) * 2 * 2
    assert sorted({cell["attack"] for cell in grid}) == attacks and "random" in attacks
    assert {cell["seed"] for cell in grid} == {"0", "1"}
    assert {cell["budget.epsilon"] for cell in grid} == {"0.1", "0.2"}
    assert all("logger" not in cell for cell in grid)  # a plain override is no sweep axis
