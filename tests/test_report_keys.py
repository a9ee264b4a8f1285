"""The report keys each cell by every setting the sweep varies: no cell is silently lost.

A real sweep varies a group outside the old fixed tuple (`budget=linf,l2`) and a plain key
(`noise.sigma=15,50`): each of its four cells must appear in report.md and in the CSV tables
under its own settings, with the numbers of its own summary.json; the L-inf and L2 cells are
never joined into one epsilon curve; a copied cell folder (same settings, other numbers) is an
error naming both folders, not an overwrite.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from miga.report import Cell, SlotCollision, find_cells, write_report
from miga.report import main as report_main
from miga.report.cells import EPSILON, line_labels, varying_keys
from miga.report.sections.curves import series
from tests.helpers import run_miga

SWEPT = ("budget", "noise.sigma")


def test_varying_keys_are_the_keys_whose_values_differ() -> None:
    settings = [
        {"attack": "miga", "budget": "linf", "noise.sigma": "15"},
        {"attack": "miga", "budget": "l2", "noise.sigma": "15"},
        {"attack": "miga", "budget": "l2"},  # no noise.sigma override: the default, another value
    ]
    assert varying_keys(settings) == ["budget", "noise.sigma"]
    assert varying_keys(settings[:1]) == []
    assert varying_keys([{"seed": "0"}, {"seed": "0"}]) == []


def _fmt(value: float) -> str:
    """The tables' number format, written out here: 3 decimals below 10, else 2."""
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"


def _key(table: Path) -> dict[str, str]:
    """A table file's section key: `<metric>__k=v,k=v.csv`."""
    return dict(pair.split("=", 1) for pair in table.stem.split("__")[1].split(","))


def _overrides(cell: Path) -> dict[str, str]:
    items = [str(i).partition("=") for i in OmegaConf.load(cell / ".hydra" / "overrides.yaml")]
    return {k: v for k, _, v in items}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("keys") / "sweep"
    run_miga(
        "-m",
        "dataset=demo_small",
        "budget=linf,l2",
        "noise.sigma=15,50",
        "attack.steps=1",
        "dataset.limit=2",
        "loader.batch_size=2",
        "logger=none",
        f"hydra.sweep.dir={root}",
        check=True,
        timeout=900,
    )
    return root


@pytest.mark.slow
def test_every_cell_of_the_sweep_is_in_the_tables_with_its_key(sweep: Path) -> None:
    assert report_main([str(sweep)]) == 0
    out = sweep / "report"
    report = (out / "report.md").read_text()
    sections = {
        block.splitlines()[0]: block for block in report.split("\n## ")[1:] if "\n| " in block
    }
    cells = sorted(p.parent for p in sweep.rglob("provenance.json"))
    assert len(cells) == 4
    psnrs = []
    for cell in cells:
        summary = json.loads((cell / "summary.json").read_text())
        wanted = {k: _overrides(cell)[k] for k in SWEPT}
        # report.md: exactly one section names this cell's budget and sigma, holding its value
        titles = [
            t for t in sections if all(f"{k}={v}" in t.split(", ") for k, v in wanted.items())
        ]
        assert len(titles) == 1, (wanted, list(sections))
        lo, hi = summary["psnr_attacked_ci95"]
        row = f"| demo | {_fmt(summary['psnr_attacked'])} [{_fmt(lo)}, {_fmt(hi)}] |"
        block = sections[titles[0]]
        assert row in block.split("| psnr_attacked |")[1].split("\n\n")[0], (wanted, block)
        # the CSV table of that section: its key in the file name, its value in the slot
        tables = [p for p in out.glob("psnr_attacked__*.csv") if wanted.items() <= _key(p).items()]
        assert len(tables) == 1, (wanted, tables)
        with open(tables[0], newline="") as handle:
            assert list(csv.reader(handle)) == [
                ["psnr_attacked", "demo_small"],
                ["demo", _fmt(summary["psnr_attacked"])],
            ]
        psnrs.append(summary["psnr_attacked"])
    assert len(set(psnrs)) == 4  # four different numbers (budget and sigma both act)
    lines = list(csv.DictReader(open(out / "cells.csv", newline="")))
    assert sorted((r["budget"], r["noise.sigma"]) for r in lines) == [
        ("l2", "15"),
        ("l2", "50"),
        ("linf", "15"),
        ("linf", "50"),
    ]
    assert "Varying across the cells: budget, budget.epsilon, noise.sigma." in report
    assert "## Strength curves" not in report  # one epsilon per budget: no curve to draw


@pytest.mark.slow
def test_linf_and_l2_cells_are_never_one_epsilon_curve(sweep: Path) -> None:
    cells = find_cells([str(sweep)])
    entries = [("miga", c.settings, c.summary) for c in cells]
    # each budget ran at its own radius: before, one "miga (steps=1)" line joined all four
    assert series(entries, EPSILON) == {}
    # with two radii per budget there are two lines, one per budget (and sigma held fixed)
    linf = [c for c in cells if c.settings["budget"] == "linf"]
    fake = [
        ("miga", {**c.settings, EPSILON: e}, c.summary)
        for c in cells
        for e in ("0.1", "0.2")
        if c.settings["noise.sigma"] == "15"
    ]
    lines = series(fake, EPSILON)
    assert len(lines) == 2 and len(linf) == 2
    assert sorted(dict(line)["budget"] for line in lines) == ["l2", "linf"]
    for points in lines.values():
        assert len(points) == 2 and {p[0] for p in points} == {0.1, 0.2}
    assert sorted(line_labels(list(lines)).values()) == ["miga (budget=l2)", "miga (budget=linf)"]


@pytest.mark.slow
def test_two_cells_claiming_one_slot_are_an_error_naming_both(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    original = sorted(p.parent for p in sweep.rglob("provenance.json"))[0]
    copy = tmp_path / "rerun" / original.name
    shutil.copytree(original, copy)
    summary = json.loads((copy / "summary.json").read_text())
    summary["psnr_attacked"] += 1.0  # other numbers under the same settings
    (copy / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(SystemExit) as stop:
        report_main([str(sweep), str(tmp_path / "rerun"), "--out", str(tmp_path / "report")])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "two cells claim one slot" in error
    assert f"{original} and {copy}" in error or f"{copy} and {original}" in error
    assert not (tmp_path / "report" / "report.md").exists()  # nothing half-written


def test_two_white_box_cells_on_one_transfer_diagonal_are_an_error(tmp_path: Path) -> None:
    surrogate = "denoiser@surrogate.denoiser"

    def cell(name: str, through: str, success: float) -> Cell:
        choices = {"denoiser": "a", "dataset": "demo", "attack": "miga", surrogate: through}
        return Cell(tmp_path / name, choices, {"success_rate": success}, rows_done=1)

    cells = [cell("none", "None", 1.0), cell("own", "a", 0.5), cell("b", "b", 0.25)]
    with pytest.raises(SlotCollision, match="transfer matrix") as error:
        write_report(cells, [], tmp_path / "report")
    assert str(tmp_path / "none") in str(error.value) and str(tmp_path / "own") in str(error.value)
