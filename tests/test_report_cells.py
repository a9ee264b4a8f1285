"""miga.report.cells and miga.report.format: what keys a cell (settings that cannot change a
number never do), and the one number formatter and table writer, against hand-written answers."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from miga.report import Cell, SlotCollision, write_report
from miga.report.cells import expected_grid, is_neutral, missing_cells, sweep_keys
from miga.report.format import compact, markdown_table, number, two_decimals, with_interval
from miga.report.sections import section_modules


def _cell(root: Path, name: str, success: float, **params: str) -> Cell:
    choices = {"denoiser": "demo", "dataset": "demo", "attack": "miga"}
    summary = {"n_images": 4, "success_rate": success}
    return Cell(root / name, choices, summary, 4, params)


@pytest.mark.parametrize(
    ("key", "neutral"),
    [
        ("logger", True),
        ("logger.mode", True),
        ("paths.checkpoints", True),
        ("hydra/launcher", True),
        ("loader.num_workers", True),
        ("loggers", False),  # a prefix of a word is not the word
        ("loader.batch_size", False),
        ("threads", False),  # the reduction order: it moves numbers
        ("speed.channels_last", False),
    ],
)
def test_neutral_keys_are_the_listed_ones_and_what_lies_under_them(key: str, neutral: bool) -> None:
    assert is_neutral(key) is neutral


def test_settings_that_cannot_change_a_number_split_no_table(tmp_path: Path) -> None:
    cells = [
        _cell(tmp_path, "a", 0.25, budget="linf", logger="none"),
        _cell(tmp_path, "b", 0.75, budget="l2", logger="wandb", **{"paths.data": "/elsewhere"}),
    ]
    assert sweep_keys(cells) == ["budget"]
    report = write_report(cells, [], tmp_path / "report").read_text()
    assert "Varying across the cells: budget." in report
    assert [line for line in report.splitlines() if line.startswith("## ")] == [
        "## budget=l2",
        "## budget=linf",
    ]
    assert "| demo | 0.750 |" in report.split("## budget=l2")[1].split("##")[0]
    assert "logger" not in report  # neither a section nor a constant of the header
    rows = list(csv.DictReader(open(tmp_path / "report" / "cells.csv", newline="")))
    # cells.csv still records what each cell was run with
    assert [(r["budget"], r["logger"], r["paths.data"]) for r in rows] == [
        ("linf", "none", "(default)"),
        ("l2", "wandb", "/elsewhere"),
    ]


@pytest.mark.parametrize("other", [{"logger": "wandb"}, {"paths.checkpoints": "/ckpt"}])
def test_two_cells_differing_only_in_neutral_settings_are_one_cell_run_twice(
    tmp_path: Path, other: dict[str, str]
) -> None:
    cells = [_cell(tmp_path, "first", 0.25, logger="none"), _cell(tmp_path, "again", 0.5, **other)]
    with pytest.raises(SlotCollision, match="two cells claim one slot") as error:
        write_report(cells, [], tmp_path / "report")
    assert str(tmp_path / "first") in str(error.value) and str(tmp_path / "again") in str(
        error.value
    )
    assert not (tmp_path / "report").exists()


def test_threads_do_change_numbers_so_they_split_tables(tmp_path: Path) -> None:
    cells = [_cell(tmp_path, "one", 0.25, threads="1"), _cell(tmp_path, "two", 0.5, threads="2")]
    report = write_report(cells, [], tmp_path / "report").read_text()
    assert "## threads=1" in report and "## threads=2" in report


def test_a_sweep_over_a_neutral_key_expects_no_extra_cells(tmp_path: Path) -> None:
    record = {
        "hydra": {
            "sweeper": {"params": {"budget.epsilon": "0.1,0.2", "logger": "none,csv"}},
            "overrides": {"task": ["loader.num_workers=0,2"]},
        }
    }
    OmegaConf.save(OmegaConf.create(record), tmp_path / "multirun.yaml")
    grid = expected_grid([str(tmp_path)])
    assert grid == [{"budget.epsilon": "0.1"}, {"budget.epsilon": "0.2"}]
    cells = [_cell(tmp_path, "a", 0.5, **{"budget.epsilon": "0.1", "logger": "csv"})]
    assert missing_cells(grid, cells) == [{"budget.epsilon": "0.2"}]


def test_one_number_formatter_with_its_digit_rules() -> None:
    assert number(None) == number(math.nan) == "—"
    assert number(0.5) == "0.500" and number(12.5) == "12.50" and number(1) == "1.000"
    assert number(0.0157, compact) == "0.0157" and number(0.5, compact) == "0.50"
    assert number(0.0, compact) == "0.00" and number("linf") == "linf"
    assert with_interval(0.5, [0.25, 0.75]) == "0.500 [0.250, 0.750]"
    assert with_interval(0.05, [0.01, 0.1], compact, two_decimals) == "0.05 [0.01, 0.10]"
    assert with_interval(0.5, None) == with_interval(0.5, [math.nan, 0.7]) == "0.500"
    assert with_interval(None, [0.1, 0.2]) == "—"


def test_one_markdown_table_writer() -> None:
    assert markdown_table(["a", "b"], [["1", "2"], ["3", "4"]]) == (
        "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |"
    )


def test_sections_come_in_their_order_and_each_has_the_section_interface() -> None:
    names = [m.__name__.rpartition(".")[2] for m in section_modules()]
    assert names == ["tables", "transfer", "curves", "sensor", "paired", "robustness"]
