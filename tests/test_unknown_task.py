"""The unknown-task path: critic training, the embedded demo_text pairs, the MIGA demo cell."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from torch.utils.data import DataLoader

from miga.callbacks.results_writer import read_rows
from miga.checkpoints import read_weight_file
from miga.data.demo_text import SENTENCES, DemoText, render, split_indices
from miga.mi.estimators import CriticCheckpointError
from miga.mi.training import validation_estimates
from tests.conftest import REPO, compose_config
from tests.helpers import run_miga

CRITIC = REPO / "miga" / "zoo" / "weights" / "demo_text_critic.pt"
HELDOUT_CRITIC = REPO / "miga" / "zoo" / "weights" / "demo_text_heldout_critic.pt"


# --------------------------------------------------------------------------- demo_text data


def test_demo_text_items_and_collate() -> None:
    data = DemoText()
    assert len(data) == len(SENTENCES)
    item = data[3]
    assert item["image"].shape == item["reference"].shape == (3, 64, 256)
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert item["index"] == 3 and (item["text"], item["reference_text"]) == SENTENCES[3]
    assert not torch.equal(item["image"], item["reference"])
    batch = next(iter(DataLoader(data, batch_size=4)))
    assert batch["image"].shape == (4, 3, 64, 256)
    assert batch["text"] == [s[0] for s in SENTENCES[:4]]
    assert batch["index"].tolist() == [0, 1, 2, 3]


def test_demo_text_splits_are_disjoint_and_renders_deterministic() -> None:
    train, test = split_indices(24, "train"), split_indices(24, "test")
    assert not set(train) & set(test) and sorted(train + test) == list(range(24))
    half_a, half_b = split_indices(24, "train_a"), split_indices(24, "train_b")
    assert not set(half_a) & set(half_b) and sorted(half_a + half_b) == train
    assert len(half_a) == len(half_b) == 9
    assert [p[0] for p in DemoText(split="test").pairs] == [SENTENCES[i][0] for i in test]
    assert torch.equal(render("Room 12 is open"), render("Room 12 is open"))
    with pytest.raises(ValueError, match="does not fit"):
        render("a sentence far too long to fit on one line of this image", width=128)


def test_demo_text_tampering_is_one_word() -> None:
    for original, tampered in SENTENCES:
        a, b = original.split(), tampered.split()
        assert len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1


@pytest.mark.slow
def test_tesseract_reads_the_clean_renders() -> None:
    from miga.downstream.ocr import TesseractOCR
    from miga.metrics.semantic import rouge_l

    data = DemoText()
    images = torch.stack([data[i]["image"] for i in range(len(data))])
    texts = TesseractOCR(psm=7)(images)
    scores = [rouge_l(read, pair[0]) for read, pair in zip(texts, data.pairs, strict=True)]
    assert sum(scores) / len(scores) >= 0.9


# --------------------------------------------------------------------------- critic training


def test_committed_critic_loads_strictly_and_frozen() -> None:
    cfg = compose_config(["task=demo_text"])
    estimator = instantiate(cfg.mi_estimator)
    assert estimator.frozen and not estimator.critic.training
    assert not any(p.requires_grad for p in estimator.parameters())
    assert CRITIC.stat().st_size < 2_000_000
    # The authors' full-width layout does not take the narrow demo critic.
    cfg = compose_config(["mi_estimator=mine", f"mi_estimator.checkpoint={CRITIC}"])
    with pytest.raises(Exception, match="does not match") as raised:  # Hydra wraps the error
        instantiate(cfg.mi_estimator)
    assert isinstance(raised.value.__cause__ or raised.value, CriticCheckpointError)


def test_heldout_critic_is_another_critic_and_separates_the_test_pairs() -> None:
    """The judge of the demo_text cell: its own weights (not the attack's), loaded strictly and
    frozen, and it tells the held-out sentences' true pairs from shuffled ones."""
    cfg = compose_config(["task=demo_text"])
    judge, attacker = instantiate(cfg.metrics.heldout_critic), instantiate(cfg.mi_estimator)
    assert judge.frozen and HELDOUT_CRITIC.stat().st_size < 2_000_000
    differ = [
        not torch.equal(a, b)
        for a, b in zip(judge.critic.parameters(), attacker.critic.parameters(), strict=True)
    ]
    assert all(differ)
    torch.manual_seed(0)
    held_out = DemoText(split="test")
    image = torch.stack([held_out[i]["image"] for i in range(len(held_out))])
    reference = torch.stack([held_out[i]["reference"] for i in range(len(held_out))])
    true, shuffled = validation_estimates(judge, image, reference, augment_sigma=0.04)
    assert true > shuffled + 0.2, (true, shuffled)


@pytest.mark.slow
def test_train_critic_checkpoint_loads_and_separates_validation_pairs(tmp_path: Path) -> None:
    run_dir, output = tmp_path / "run", tmp_path / "critic.pt"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "miga.train_critic",
            "dataset=demo_text",
            "mi_estimator=mine_demo_text",
            "validation=demo_text_test",
            "dataset.split=train",
            "steps=40",
            "batch_size=8",
            "eval_every=20",
            "logger=csv",
            f"hydra.run.dir={run_dir}",
            f"output={output}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["output"] == str(output) and output.is_file()
    assert json.loads((run_dir / "critic_summary.json").read_text()) == report
    assert len(json.loads((run_dir / "mi_curve.json").read_text())) == 40
    metrics = next(run_dir.glob("csv/version_*/metrics.csv")).read_text().splitlines()
    assert "mi/estimate" in metrics[0] and "mi/validation" in metrics[0]

    # A plain state dict that `mi_estimator.checkpoint=` loads strictly, frozen.
    state = read_weight_file(output)
    assert all(key.startswith(("features.", "classifier.")) for key in state)
    cfg = compose_config(["task=demo_text", f"mi_estimator.checkpoint={output}"])
    estimator = instantiate(cfg.mi_estimator)
    assert estimator.frozen and not estimator.critic.training

    torch.manual_seed(0)
    held_out = DemoText(split="test")
    image = torch.stack([held_out[i]["image"] for i in range(len(held_out))])
    reference = torch.stack([held_out[i]["reference"] for i in range(len(held_out))])
    true, shuffled = validation_estimates(estimator, image, reference, augment_sigma=0.04)
    assert true > shuffled + 0.2, (true, shuffled)
    assert report["mi_validation"] > report["mi_validation_shuffled"]


# --------------------------------------------------------------------------- the demo cell


@pytest.mark.slow
def test_unknown_task_demo_moves_the_text_but_not_the_psnr(tmp_path: Path) -> None:
    if shutil.which("tesseract") is None:
        pytest.skip("tesseract is not installed (make install)")
    run_dir = tmp_path / "cell"
    done = run_miga("task=demo_text", f"hydra.run.dir={run_dir}", "logger=none", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = read_rows(run_dir / "samples.csv")
    mean = {
        key: sum(r[key] for r in rows) / len(rows)
        for key in (
            "attack_critic_denoised",
            "attack_critic_attacked",
            "heldout_critic_denoised",
            "heldout_critic_attacked",
        )
    }
    print(json.dumps({**summary, **mean}))
    assert summary["n_images"] == len(rows) > 0
    for key, value in mean.items():
        assert summary[key] == pytest.approx(value, rel=1e-9), key
    # The attack's own critic score of D(x_n+δ) against the reference rose (what it maximised)
    assert mean["attack_critic_attacked"] > mean["attack_critic_denoised"]
    # ... and so did the score of a critic it never saw (another split, another seed): the
    # judge, whose weights differ from the attack's critic.
    assert mean["heldout_critic_attacked"] > mean["heldout_critic_denoised"]
    assert mean["heldout_critic_denoised"] != pytest.approx(mean["attack_critic_denoised"])
    # The text read in the output moved away from the original ...
    assert summary["rouge_denoised"] >= 0.9
    assert summary["rouge_attacked"] <= summary["rouge_denoised"] - 0.1
    # ... while the output stays as close to the clean image (PSNR within 3 dB).
    assert abs(summary["psnr_attacked"] - summary["psnr_denoised"]) <= 3.0
