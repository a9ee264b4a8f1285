"""Held-out scoring: a classifier the attack never saw judges the cell (`heldout_*` columns)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from miga.callbacks.results_writer import read_rows
from miga.metrics.intervals import wilson
from tests.conftest import compose_config
from tests.helpers import run_miga

pytestmark = pytest.mark.slow


def test_heldout_classifier_scores_the_cell_beside_the_attacked_one(tmp_path: Path) -> None:
    overrides = ["dataset=demo_small", "attack.steps=2", "metrics=classification_heldout"]
    run_miga("logger=none", *overrides, run_dir=tmp_path, check=True)
    rows = read_rows(tmp_path / "samples.csv")
    summary = json.loads((tmp_path / "summary.json").read_text())

    # Independently: the held-out Lite1 (not the attacked Lite0) on the clean images
    cfg = compose_config(overrides)
    dataset = instantiate(cfg.dataset)
    items = [dataset[i] for i in range(len(dataset))]
    clean = torch.stack([item["image"] for item in items])
    labels = torch.tensor([int(item["label"]) for item in items])
    judge = instantiate(cfg.metrics.heldout_downstream).eval()
    with torch.no_grad():
        expected = judge(clean).argmax(dim=1)
    assert [int(r["heldout_pred_clean"]) for r in rows] == expected.tolist()
    hits = int((expected == labels).sum())
    assert summary["heldout_acc_clean"] == pytest.approx(hits / len(rows))
    assert summary["heldout_acc_clean_ci95"] == pytest.approx(list(wilson(hits, len(rows))))
    # the cell's own columns are the attacked model's, unchanged beside them
    assert "pred_clean" in rows[0] and "heldout_success_rate" in summary
    assert [r["label"] for r in rows] == labels.tolist()


def test_without_a_heldout_classifier_no_heldout_columns_appear() -> None:
    cfg = compose_config(["dataset=demo_small"])
    assert cfg.metrics.heldout_downstream is None
    scorers = instantiate(cfg.metrics.scorers).values()
    heldout = [s for s in scorers if type(s).__name__ == "HeldoutClassification"]
    assert len(heldout) == 1 and heldout[0].downstream is None
