"""The report's worst-case robustness table (experiment=robustness, issue 27 §4).

Synthetic cells whose summaries are `summarize` of hand-made rows: the rows are sorted by
robust accuracy at the largest epsilon (most robust first; ties by the smaller epsilon), the
intervals printed are Wilson's (hand-computed here), the broken-by column counts each member,
a masked gradient is named, robustness.csv holds the summaries' values. Then one real tiny
sweep of `experiment=robustness`: every cell is in report.md, report.html and the CSV.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from miga.metrics.summary import summarize
from miga.report import Cell, SlotCollision
from miga.report import main as report_main
from miga.report.sections.robustness import (
    CSV_FILE,
    broken_by,
    epsilon_label,
    robustness,
    sections,
)
from tests.conftest import CONF, REPO, compose_config

NAN = math.nan
EPS1, EPS4 = 1 / 255, 4 / 255


def _cell(
    root: Path,
    denoiser: str,
    epsilon: float,
    robust: list[float],
    breakers: list[str] | None = None,
    masked: list[float] | None = None,
    **params: str,
) -> Cell:
    """A finished worst_case cell: its summary is `summarize` of rows built from `robust`
    (1 kept, 0 broken, NaN not eligible), who broke each image and which were masked."""
    n = len(robust)
    breakers = breakers or ["" if r != 0 else "miga" for r in robust]
    masked = masked or [0.0] * n
    rows = [
        {
            "id": i,
            "robust": robust[i],
            "broken_by": breakers[i],
            "masked_gradient": masked[i],
            "correct_denoised": 0.0 if math.isnan(robust[i]) else 1.0,
            "correct_attacked": 1.0 if robust[i] == 1 else 0.0,
            "psnr_denoised": 28.0 + i,
            "psnr_attacked": 27.0 + i / 2,
        }
        for i in range(n)
    ]
    path = root / "_".join([denoiser, f"{epsilon:.4f}", *params.values()])
    path.mkdir(parents=True)
    settings = {"budget.epsilon": str(epsilon), **params}
    return Cell(path, {"attack": "worst_case", "denoiser": denoiser}, summarize(rows), n, settings)


@pytest.fixture
def cells(tmp_path: Path) -> list[Cell]:
    return [
        _cell(tmp_path, "demo", EPS1, [1, 1, 1]),
        _cell(tmp_path, "demo", EPS4, [0, 0, 0]),
        _cell(tmp_path, "ffdnet", EPS1, [1, 1, 0]),
        _cell(
            tmp_path,
            "ffdnet",
            EPS4,
            [1, 0, 0, NAN],
            ["", "miga", "square", ""],
            [0.0, 0.0, 1.0, 0.0],
        ),
        _cell(tmp_path, "gaussian_filter", EPS1, [1, 1, 1]),
        _cell(tmp_path, "gaussian_filter", EPS4, [1, 0, 0], ["", "ifgsm", "miga"]),
        _cell(tmp_path, "demo_restormer", EPS4, [NAN, NAN]),  # nothing eligible: no rate
    ]


def test_rows_sorted_by_robust_accuracy_at_the_largest_epsilon(cells: list[Cell]) -> None:
    table = robustness(cells)
    assert table is not None and table.epsilons == [EPS1, EPS4]
    # at 4/255: gaussian_filter 1/3 and ffdnet 1/3 (tie: 1.0 vs 2/3 at 1/255), demo 0,
    # demo_restormer undefined (last). By 1/255 alone demo would lead; by name it would too.
    assert [dict(row.key)["denoiser"] for row in table.rows] == [
        "gaussian_filter",
        "ffdnet",
        "demo",
        "demo_restormer",
    ]


def test_intervals_broken_by_and_masked_note_in_report_md(cells: list[Cell], tmp_path: Path):
    out = tmp_path / "report"
    out.mkdir()
    (text,) = sections(cells, out)
    main = [line for line in text.split("\n\n") if line.startswith("| denoiser | PSNR")][0]
    body = main.splitlines()[2:]
    # Wilson 95 % for 1/3 (n=3), by hand: centre 0.4269, half-width 0.3654 → [0.06, 0.79];
    # for 2/3: [0.21, 0.94]; 0/3: [0, 0.56]; 3/3: [0.44, 1]
    assert body[0].split(" | ")[3:5] == ["1.00 [0.44, 1.00]", "0.33 [0.06, 0.79]"]
    assert body[1].split(" | ")[3:5] == ["0.67 [0.21, 0.94]", "0.33 [0.06, 0.79]"]
    assert body[2].split(" | ")[3:5] == ["1.00 [0.44, 1.00]", "0.00 [0.00, 0.56]"]
    assert body[3].split(" | ")[3:5] == ["—", "—"]  # no 1/255 cell; no eligible image
    # broken by at 4/255, most first, ties by name; the masked break named
    assert body[0].rstrip(" |").endswith("| ifgsm 1, miga 1")
    assert body[1].rstrip(" |").endswith("| miga 1, square 1 (1 masked gradient)")
    assert body[2].rstrip(" |").endswith("| miga 3")
    assert "- denoiser=ffdnet, ε=4/255: 1 image(s) broken only by a gradient-free" in text
    # the per-budget table: header, rule, one line per cell
    detail = text.split("Per budget")[1]
    assert sum(line.startswith("|") for line in detail.splitlines()) == 2 + len(cells)


def test_csv_holds_the_summaries(cells: list[Cell], tmp_path: Path) -> None:
    sections(cells, tmp_path)
    with open(tmp_path / CSV_FILE, newline="") as handle:
        lines = list(csv.DictReader(handle))
    by_path = {str(c.path): c for c in cells}
    assert sorted(line["path"] for line in lines) == sorted(by_path)
    # in the table's order: gaussian_filter's two cells first, 1/255 before 4/255
    assert [(line["denoiser"], line["epsilon_255"]) for line in lines[:2]] == [
        ("gaussian_filter", "1.0"),
        ("gaussian_filter", "4.0"),
    ]
    for line in lines:
        summary = by_path[line["path"]].summary
        for key in ("robust_accuracy", "acc_denoised", "psnr_attacked", "n_masked_gradient"):
            assert float(line[key]) == pytest.approx(summary[key], nan_ok=True)
        low, high = summary["robust_accuracy_ci95"]
        assert float(line["robust_accuracy_ci95_low"]) == pytest.approx(low, nan_ok=True)
        assert float(line["robust_accuracy_ci95_high"]) == pytest.approx(high, nan_ok=True)
        for member in ("miga", "ifgsm", "square"):
            assert int(line[f"broken_by_{member}"]) == summary.get(f"broken_by_{member}", 0)
    ffdnet4 = next(x for x in lines if x["denoiser"] == "ffdnet" and x["epsilon_255"] == "4.0")
    assert (ffdnet4["broken_by_miga"], ffdnet4["broken_by_square"]) == ("1", "1")
    assert float(ffdnet4["robust_accuracy"]) == pytest.approx(1 / 3)


def test_other_varying_settings_split_rows_and_ensemble_less_cells_are_left_out(
    tmp_path: Path,
) -> None:
    cells = [
        _cell(tmp_path, "demo", EPS4, [1, 0], dataset="demo"),
        _cell(tmp_path, "demo", EPS4, [1, 1], dataset="imagenet_samples"),
    ]
    plain = Cell(tmp_path / "miga", {"attack": "miga"}, {"success_rate": 1.0}, 2, {})
    table = robustness([*cells, plain])
    assert table is not None and table.keys == ["denoiser", "dataset"]
    assert [row.key for row in table.rows] == [
        (("denoiser", "demo"), ("dataset", "imagenet_samples")),
        (("denoiser", "demo"), ("dataset", "demo")),
    ]
    assert sections([plain], tmp_path) == [] and not (tmp_path / CSV_FILE).exists()


def test_two_cells_in_one_slot_are_an_error(tmp_path: Path) -> None:
    cells = [_cell(tmp_path / "a", "demo", EPS4, [1]), _cell(tmp_path / "b", "demo", EPS4, [0])]
    with pytest.raises(SlotCollision, match="robustness table"):
        robustness(cells)


def test_labels() -> None:
    assert epsilon_label(0.01568627450980392) == "4/255"
    assert epsilon_label(0.00392156862745098) == "1/255"
    assert epsilon_label(0.001) == "0.001"
    assert broken_by({"broken_by_square": 2, "broken_by_apgd_ce": 2, "broken_by_miga": 5}) == (
        "miga 5, apgd_ce 2, square 2"
    )
    assert broken_by({"robust_accuracy": 1.0, "n_masked_gradient": 0.0}) == "none"


def test_the_experiment_sweeps_every_offline_denoiser_at_three_deliverable_budgets() -> None:
    cfg = compose_config(["experiment=robustness"])
    params = {k: str(v).split(",") for k, v in cfg.hydra.sweeper.params.items()}
    # the four offline denoisers and the two trained defenses, each a conf/denoiser choice
    assert set(params["denoiser"]) == {
        "demo",
        "demo_hat",
        "demo_semantic",
        "demo_restormer",
        "ffdnet",
        "gaussian_filter",
    }
    assert all((CONF / "denoiser" / f"{name}.yaml").is_file() for name in params["denoiser"])
    assert params["dataset"] == ["demo"]
    assert [float(e) * 255 for e in params["budget.epsilon"]] == pytest.approx([1, 2, 4])
    assert cfg.attack._target_ == "miga.attacks.WorstCase"
    assert cfg.delivery._target_ == "miga.threats.PNGDelivery"
    assert list(cfg.attack.members)[0] == "miga" and list(cfg.attack.members)[-1] == "square"
    # demo-scale Square in the experiment only; the attack's own default stays AutoAttack's
    assert cfg.attack.members.square.n_queries == 300
    assert compose_config(["attack=square"]).attack.n_queries == 5000


@pytest.mark.slow
def test_a_real_robustness_sweep_is_in_the_report(tmp_path: Path) -> None:
    """experiment=robustness at tiny settings: each cell is a row of report.md with its own
    summary's numbers, a line of robustness.csv, and a row of report.html's table."""
    sweep = tmp_path / "robustness"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "miga.run",
            "-m",
            "experiment=robustness",
            "dataset=demo_small",
            "dataset.limit=2",
            "denoiser=demo,gaussian_filter",
            "budget.epsilon=0.01568627450980392",
            "attack.members.miga.steps=1",
            "attack.members.ifgsm.steps=1",
            "attack.members.square.n_queries=5",
            "logger=none",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert report_main([str(sweep)]) == 0
    out = sweep / "report"
    report = (out / "report.md").read_text()
    section = report.split("## Worst-case robustness")[1].split("\n## ")[0]
    html = (out / "report.html").read_text()
    with open(out / CSV_FILE, newline="") as handle:
        lines = {line["denoiser"]: line for line in csv.DictReader(handle)}
    summaries = {
        json.loads((p.parent / "provenance.json").read_text())["choices"]["denoiser"]: json.loads(
            p.read_text()
        )
        for p in sweep.rglob("summary.json")
    }
    assert sorted(summaries) == ["demo", "gaussian_filter"]
    for denoiser, summary in summaries.items():
        robust = summary["robust_accuracy"]
        text = "—" if math.isnan(robust) else f"{robust:.2f}"
        row = next(r for r in section.splitlines() if r.startswith(f"| {denoiser} | "))
        assert f" | {summary['psnr_denoised']:.2f} | " in row and f" | {text}" in row
        assert f"<td>{denoiser}</td>" in html
        assert float(lines[denoiser]["robust_accuracy"]) == pytest.approx(robust, nan_ok=True)
        members = [k for k in summary if k.startswith("broken_by_")]
        for key in members:
            assert int(lines[denoiser][key]) == summary[key]
    assert 'data-table="main"' in html and "ε=4/255" in section
