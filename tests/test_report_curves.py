"""miga.report.sections.curves: the step-size pick, the ablation order, the curve PNGs;
miga.report.cells: cell parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from miga.report.cells import cell_params
from miga.report.sections.curves import (
    ablation_section,
    draw_curves,
    pick_best,
    stepsize_section,
)


def _s(success, stealth=0.0, psnr=20.0):  # noqa: ANN001, ANN202
    return {
        "success_rate": success,
        "stealth_success_rate": stealth,
        "psnr_attacked": psnr,
        "success_rate_ci95": [max(0.0, success - 0.1), min(1.0, success + 0.1)],
    }


def test_pick_is_the_best_of_its_grid_with_documented_tie_breaks() -> None:
    grid = [("0.1", _s(0.5)), ("0.01", _s(0.9, 0.2, 25.0)), ("0.001", _s(0.9, 0.3, 20.0))]
    assert pick_best(grid)[0] == "0.001"  # tie on success -> higher stealth success
    grid = [("a", _s(0.9, 0.3, 20.0)), ("b", _s(0.9, 0.3, 26.0)), ("c", _s(0.2, 0.9, 40.0))]
    assert pick_best(grid)[0] == "b"  # tie on both -> higher PSNR(D(x_n+δ), x)
    assert pick_best([("x", {"success_rate": float("nan")}), ("y", _s(0.0))])[0] == "y"
    with pytest.raises(ValueError, match="empty"):
        pick_best([])


def test_stepsize_table_marks_the_pick_per_attack() -> None:
    entries = [
        ("miga", {"attack.optimizer.lr": v}, _s(r))
        for v, r in (("0.1", 0.6), ("0.004", 0.8), ("0.001", 0.7))
    ]
    entries += [("pgd_l2", {"attack.step_fraction": "0.25"}, _s(0.3))]
    text = stepsize_section(entries)
    assert "| 0.004 (picked) |" in text and "0.1 (picked)" not in text
    assert "| miga | attack.optimizer.lr=0.004 |" in text
    assert "| pgd_l2 | attack.step_fraction=0.25 |" in text


def test_ablation_table_puts_full_first() -> None:
    entries = [
        ("miga", {"ablation": n}, _s(r)) for n, r in (("no_mi", 0.1), ("full", 0.9), ("a", 0.5))
    ]
    rows = [line for line in ablation_section(entries).splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows[1:]] == ["full", "a", "no_mi"]
    assert "0.90 [0.80, 1.00]" in rows[1]


def test_curves_drawn_one_line_per_attack(tmp_path: Path) -> None:
    entries = [
        (a, {"budget.epsilon": str(e / 255), "attack.steps": "10"}, _s(e / 4))
        for a in ("miga", "ifgsm")
        for e in (1.0, 2.0, 4.0)
    ]
    names = sorted(p.name for p in draw_curves(entries, tmp_path))
    assert names == ["curve_psnr_vs_success.png", "curve_vs_epsilon.png"]
    assert all((tmp_path / n).stat().st_size > 1000 for n in names)
    assert draw_curves(entries[:1], tmp_path / "none") == []  # one point is no curve


def test_cell_params_reads_overrides_and_config(tmp_path: Path) -> None:
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(
        OmegaConf.create(["attack=miga", "budget.epsilon=0.5", "+ablation=no_mi"]),
        tmp_path / ".hydra" / "overrides.yaml",
    )
    OmegaConf.save(
        OmegaConf.create({"attack": {"steps": 7}, "budget": {"epsilon": 0.1}}),
        tmp_path / ".hydra" / "config.yaml",
    )
    assert cell_params(tmp_path) == {
        "attack": "miga",
        "budget.epsilon": "0.5",
        "ablation": "no_mi",
        "attack.steps": "7",
    }


def test_stepsize_and_ablation_keep_apart_cells_that_differ_in_another_setting() -> None:
    """Two datasets in one sweep: one grid (and one pick) per dataset, one ablation row per
    (variant, dataset), each named by the dataset: no row stands for two cells."""
    success = {("a", "0.1"): 0.5, ("a", "0.01"): 0.9, ("b", "0.1"): 0.5, ("b", "0.01"): 0.2}
    entries = [
        ("miga", {"attack.optimizer.lr": lr, "dataset": d}, _s(r)) for (d, lr), r in success.items()
    ]
    text = stepsize_section(entries)
    assert "| miga (dataset=a) | attack.optimizer.lr=0.01 |" in text  # 0.9 beats 0.5
    assert "| miga (dataset=b) | attack.optimizer.lr=0.1 |" in text  # 0.5 beats 0.2
    variants = [{"ablation": n, "dataset": d} for d in "ab" for n in ("x", "full")]
    entries = [("miga", params, _s(0.5)) for params in variants]
    rows = [line for line in ablation_section(entries).splitlines() if line.startswith("| ")]
    names = [r.split("|")[1].strip() for r in rows[1:]]
    assert names == ["full (dataset=a)", "x (dataset=a)", "full (dataset=b)", "x (dataset=b)"]
