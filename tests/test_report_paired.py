"""The report's paired comparison: MIGA − each attack on the same image ids, against the
hand-computed difference and the paired bootstrap of the matched per-image values."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from omegaconf import OmegaConf

from miga.metrics.intervals import paired_bootstrap_diff
from miga.report import Cell
from miga.report.sections.paired import paired_difference, paired_rows
from miga.report.sections.paired import sections as paired_sections

NAN = math.nan


def _cell(root: Path, attack: str, success: dict[int, float], **params: str) -> Cell:
    path = root / f"{attack}_{'_'.join(params.values())}"
    (path / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"seed": 7}), path / ".hydra" / "config.yaml")
    with open(path / "samples.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "success"])
        writer.writerows([[i, s] for i, s in success.items()])
    return Cell(path, {"attack": attack, "denoiser": "demo"}, {"n_images": 5}, 5, params)


def test_the_difference_pairs_images_by_id_and_drops_undefined_ones(tmp_path: Path) -> None:
    ours = _cell(tmp_path, "miga", {0: 1, 1: 1, 2: 1, 3: 0, 4: NAN})
    theirs = _cell(tmp_path, "ifgsm", {3: 0, 2: 1, 1: 0, 0: 1, 4: 1})  # other row order
    from miga.callbacks.results_writer import read_rows

    n, diff, ci = paired_difference(
        read_rows(ours.path / "samples.csv"), read_rows(theirs.path / "samples.csv"), "success", 7
    )
    assert (n, diff) == (4, 0.25)  # id 4 is undefined for MIGA: 3/4 − 2/4
    assert ci == paired_bootstrap_diff([1, 1, 1, 0], [1, 0, 1, 0], 7)
    assert ci[0] <= 0.0 <= ci[1]  # one image of four: no difference one can claim


def test_rows_per_context_holding_miga_labelled_by_what_varies(tmp_path: Path) -> None:
    cells = [
        _cell(tmp_path, "miga", {0: 1, 1: 1}, **{"budget.epsilon": "0.1"}),
        _cell(tmp_path, "pgd", {0: 0, 1: 0}, **{"budget.epsilon": "0.1"}),
        _cell(tmp_path, "miga", {0: 1, 1: 0}, **{"budget.epsilon": "0.2"}),
        _cell(tmp_path, "ifgsm", {0: 1, 1: 0}, **{"budget.epsilon": "0.2"}),
        _cell(tmp_path, "ifgsm", {0: 1, 1: 1}, **{"budget.epsilon": "0.3"}),  # no MIGA here
    ]
    rows = paired_rows(cells)
    assert [r[:3] for r in rows] == [
        ["budget.epsilon=0.1", "pgd", "+1.00 [+1.00, +1.00] (n=2)"],
        ["budget.epsilon=0.2", "ifgsm", "+0.00 [+0.00, +0.00] (n=2)"],
    ]
    assert rows[0][3] == "—"  # no stealth_success column in these rows
    assert paired_sections(cells[4:]) == []
