"""`python -m miga.run` end to end, as a user runs it (subprocesses, real W&B offline)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from miga.callbacks.image_grid import CAPTION_PX, PANELS
from miga.callbacks.results_writer import read_rows
from miga.metrics.summary import summarize
from tests import helpers

pytestmark = pytest.mark.slow

SMALL = ["dataset.limit=3", "loader.batch_size=2", "attack.steps=2"]


def run_miga(run_dir: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    return helpers.run_miga(*overrides, run_dir=run_dir, check=check)


@pytest.fixture(scope="module")
def demo_process(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The embedded default, unchanged but for its output folder, and what it printed."""
    run_dir = tmp_path_factory.mktemp("demo")
    return run_dir, run_miga(run_dir)


@pytest.fixture(scope="module")
def demo_run(demo_process) -> Path:
    return demo_process[0]


#: What Lightning and W&B used to print around the demo (issue 25): none of it is the cell's.
NOISE = (
    "The anonymous setting has no effect",  # W&B, for Lightning's anonymous=None
    "`srun` command is available",  # Lightning's SLURM hint, outside any SLURM job
    "litlogger",  # Lightning's advertisement
    "LeafSpec",  # torch's deprecation, raised in Lightning's pytree code
    "Seed set to",  # Lightning's seed_everything
    "GPU available:",  # Lightning's device info
    "TPU available:",
)
MIGA_LOG = re.compile(r"^\[[^]]+\]\[(__main__|miga(\.\w+)*)\]\[(INFO|WARNING)\] - ")
PROGRESS = re.compile(r"^Predicting( DataLoader \d+)?: ")
RESULT = re.compile(r"^\w+ {2,}\S")


def console_lines(out: subprocess.CompletedProcess) -> list[str]:
    """Every line a terminal would have shown (the progress bar redraws with carriage returns)."""
    return [line.strip() for line in re.split(r"[\r\n]", out.stdout + out.stderr) if line.strip()]


def foreign_lines(lines: list[str]) -> list[str]:
    """Lines that are not miga's log, the progress bar or the results block."""
    foreign, in_results = [], False
    for line in lines:
        in_results = in_results or line.startswith("results: ")
        if line.startswith("results: ") or MIGA_LOG.match(line) or PROGRESS.match(line):
            continue
        if not (in_results and RESULT.match(line)):
            foreign.append(line)
    return foreign


def test_demo_prints_only_miga_lines_the_progress_and_the_results(demo_process) -> None:
    run_dir, out = demo_process
    lines = console_lines(out)
    assert [n for n in NOISE if n in out.stdout + out.stderr] == []
    assert foreign_lines(lines) == []
    assert f"results: {run_dir}" in lines
    assert any(line.startswith("success_rate ") for line in lines)


def test_demo_progress_shows_each_step_live_and_each_batch_s_outcome_after_it(
    demo_process,
) -> None:
    """Two batches of 10 steps: `step=1/10` … `step=10/10` in turn, no loss while a batch runs
    (it would be a stale figure), then the batch's loss and success rate."""
    lines = [line for line in console_lines(demo_process[1]) if PROGRESS.match(line)]
    steps = []
    for line in lines:
        if (step := re.search(r"step=(\d+)/10\]", line)) and (not steps or steps[-1] != step[1]):
            steps.append(step[1])
    assert steps == [str(k) for k in range(1, 11)] * 2
    assert not any("step=" in line and "loss" in line for line in lines)
    outcomes = [line for line in lines if "batch_loss=" in line and "batch_success=1.00" in line]
    assert len({re.search(r"(\d+)/2 ", line)[1] for line in outcomes}) == 2  # after each batch


def test_demo_shows_the_papers_effect(demo_run: Path) -> None:
    summary = json.loads((demo_run / "summary.json").read_text())
    assert summary["n_images"] == 14
    assert summary["acc_denoised"] >= summary["acc_clean"] - 0.25
    assert summary["acc_attacked"] <= summary["acc_denoised"] - 0.40
    assert abs(summary["psnr_attacked"] - summary["psnr_denoised"]) <= 2.0
    assert summary["linf_max"] <= 4 / 255 + 1e-6
    for key in ("success_rate", "acc_clean", "acc_denoised", "acc_attacked"):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["seconds"] > 0


def test_samples_have_one_row_per_image_and_the_summary_is_their_aggregate(demo_run) -> None:
    rows = read_rows(demo_run / "samples.csv")
    header = (demo_run / "samples.csv").read_text().splitlines()[0].split(",")
    assert header[0] == "id"
    assert [row["id"] for row in rows] == list(range(14))
    summary = json.loads((demo_run / "summary.json").read_text())
    recomputed = summarize(rows, seed=0)  # the config's seed
    assert set(recomputed) <= set(summary)
    for key, value in recomputed.items():
        assert summary[key] == pytest.approx(value, rel=1e-12, nan_ok=True), key
    contract = {
        "n_images",
        "acc_clean",
        "acc_denoised",
        "acc_attacked",
        "psnr_denoised",
        "psnr_attacked",
        "ssim_denoised",
        "ssim_attacked",
        "linf_max",
        "l2_mean",
        "success_rate",
        "seconds",
    }
    assert contract <= set(summary)


def test_samples_name_the_class_beside_every_class_index(demo_run) -> None:
    """`<column>_name` right after each class-index column, read from ImageNet's synset table
    independently of the writer."""
    from miga.downstream.classifier import imagenet_class_names

    names = imagenet_class_names()
    header = (demo_run / "samples.csv").read_text().splitlines()[0].split(",")
    for column in ("label", "pred_clean", "pred_denoised", "pred_attacked"):
        assert header[header.index(column) + 1] == f"{column}_name"
    rows = read_rows(demo_run / "samples.csv")
    for row in rows:
        for column in ("label", "pred_clean", "pred_denoised", "pred_attacked"):
            assert row[f"{column}_name"] == names[row[column]]
    assert any(row["pred_attacked_name"] != row["label_name"] for row in rows)  # flips named


def test_summary_equals_an_independent_numpy_reduction_of_samples_csv(demo_run) -> None:
    """Not `summarize` again: numpy reads the CSV and reduces each column as docs/metrics.md
    defines the key, and the demo's effect is checked on the values themselves."""
    table = np.genfromtxt(demo_run / "samples.csv", delimiter=",", names=True)
    summary = json.loads((demo_run / "summary.json").read_text())
    expected = {
        "n_images": len(table),
        "acc_clean": table["correct_clean"].mean(),
        "acc_denoised": table["correct_denoised"].mean(),
        "acc_attacked": table["correct_attacked"].mean(),
        "psnr_denoised": table["psnr_denoised"].mean(),
        "psnr_attacked": table["psnr_attacked"].mean(),
        "ssim_attacked": table["ssim_attacked"].mean(),
        "linf_max": table["linf"].max(),
        "l2_mean": table["l2"].mean(),
        # success is defined only where D(x_n) was right: NaN elsewhere, left out of the rate
        "success_rate": np.nanmean(table["success"]),
        "stealth_success_rate": np.nanmean(table["stealth_success"]),
        "steps_mean": table["steps"].mean(),
    }
    for key, value in expected.items():
        assert summary[key] == pytest.approx(float(value), rel=1e-9, abs=1e-12), key
    eligible = table["correct_denoised"] == 1
    assert np.isnan(table["success"][~eligible]).all()
    assert summary["success_rate"] == pytest.approx(1 - table["correct_attacked"][eligible].mean())
    assert summary["n_images"] == 14 and summary["linf_max"] <= 4 / 255 * (1 + 1e-6)


def test_summary_intervals_are_wilson_for_rates_and_a_bootstrap_for_means(demo_run) -> None:
    """Wilson's closed form by hand for the rates; for means, an interval that holds the mean,
    lies inside the column's range, and narrows as it should (shorter than the range)."""
    table = np.genfromtxt(demo_run / "samples.csv", delimiter=",", names=True)
    summary = json.loads((demo_run / "summary.json").read_text())
    z = 1.959963984540054
    for key, column in (("acc_denoised", "correct_denoised"), ("success_rate", "success")):
        x = table[column][~np.isnan(table[column])]
        n, p = len(x), x.mean()
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        lo, hi = summary[f"{key}_ci95"]
        assert lo == pytest.approx(max(0.0, centre - half), abs=1e-12), key
        assert hi == pytest.approx(min(1.0, centre + half), abs=1e-12), key
    column = table["psnr_attacked"]
    lo, hi = summary["psnr_attacked_ci95"]
    assert column.min() < lo <= summary["psnr_attacked"] <= hi < column.max()
    assert "linf_max_ci95" not in summary  # maxima and counts carry no interval


def test_wandb_offline_run_is_syncable_and_holds_table_and_grids(demo_run) -> None:
    runs = list((demo_run / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    out = subprocess.run(
        [str(Path(sys.executable).parent / "wandb"), "sync", "--dry-run", str(runs[0])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Would sync 1 run(s)" in out.stdout + out.stderr
    media = runs[0] / "files" / "media"
    assert len(list((media / "images").glob("grids_*.png"))) == 8
    assert len(list((media / "table").glob("samples_*.table.json"))) == 1
    grids = sorted((demo_run / "grids").glob("*.png"))
    assert len(grids) == 8
    width, height = Image.open(grids[0]).size
    assert height == width // len(PANELS) + CAPTION_PX  # one row of panels over its captions


def test_rerun_resumes_without_recomputing_and_refuses_a_changed_config(demo_run) -> None:
    parts_before = {p.name: p.read_bytes() for p in (demo_run / "rows").glob("*.csv")}
    samples_before = (demo_run / "samples.csv").read_bytes()
    out = run_miga(demo_run, "logger=none")
    assert "14 samples already have results" in out.stdout + out.stderr
    assert foreign_lines(console_lines(out)) == []  # a finished cell resumes quietly
    assert {p.name: p.read_bytes() for p in (demo_run / "rows").glob("*.csv")} == parts_before
    assert (demo_run / "samples.csv").read_bytes() == samples_before
    changed = run_miga(demo_run, "attack.steps=3", "logger=none", check=False)
    assert changed.returncode != 0
    assert "holds results of another config" in changed.stderr


def test_same_seed_gives_bit_identical_rows_and_batch_size_changes_only_rounding(
    tmp_path,
) -> None:
    run_miga(tmp_path / "a", *SMALL, "logger=none")
    run_miga(tmp_path / "b", *SMALL, "logger=none")
    run_miga(tmp_path / "c", *SMALL, "logger=none", "loader.batch_size=3")
    first = (tmp_path / "a" / "samples.csv").read_bytes()
    assert first == (tmp_path / "b" / "samples.csv").read_bytes()
    # Per-sample noise and losses: another batch size changes only float rounding in kernels.
    for row_a, row_c in zip(
        read_rows(tmp_path / "a" / "samples.csv"),
        read_rows(tmp_path / "c" / "samples.csv"),
        strict=True,
    ):
        for key, value in row_a.items():
            if isinstance(value, str):  # a class-name column
                assert value == row_c[key], key
                continue
            assert math.isclose(value, row_c[key], rel_tol=1e-3, abs_tol=1e-5), key


def test_csv_logger_writes_the_summary_metrics(tmp_path) -> None:
    run_miga(tmp_path, *SMALL, "logger=csv")
    metrics = next((tmp_path / "csv").rglob("metrics.csv")).read_text()
    assert "summary/acc_attacked" in metrics


def test_callbacks_are_removed_and_added_from_the_command_line(tmp_path) -> None:
    """`~callbacks.image_grids` drops the cell's grids; `+callbacks.<name>={_target_:…}` adds a
    callback of the user's (here a second grid writer into another folder, one image)."""
    extra = tmp_path / "extra"
    run_dir = tmp_path / "cell"
    run_miga(
        run_dir,
        *SMALL,
        "logger=csv",
        "~callbacks.image_grids",
        f"+callbacks.mine={{_target_:miga.callbacks.image_grid.ImageGrids,output_dir:{extra},"
        "max_images:1}",
    )
    assert len(read_rows(run_dir / "samples.csv")) == 3
    assert not (run_dir / "grids").exists()
    assert len(list((extra / "grids").glob("*.png"))) == 1
