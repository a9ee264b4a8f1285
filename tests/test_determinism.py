"""The determinism contract (docs/architecture.md §7) and the documented-numbers checker.

Same config (threads included) + seed on one machine → the same samples.csv, bit for bit, and
the run records the thread count it ran with. Whether another thread count changes the numbers
depends on the CPU's kernels, so nothing here asserts that it does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from miga.utils.threads import apply_threads
from tests import helpers
from tests.conftest import REPO

pytestmark = pytest.mark.slow

# Two 64-px photos, one attack step: seconds per cell.
TINY = ["dataset=demo_small", "dataset.limit=2", "attack.steps=1", "logger=none"]


def run_miga(run_dir: Path, *overrides: str) -> None:
    helpers.run_miga(*overrides, run_dir=run_dir, check=True)


def test_same_config_and_threads_give_identical_rows_and_provenance_records_them(
    tmp_path,
) -> None:
    run_miga(tmp_path / "a", *TINY, "threads=1")
    run_miga(tmp_path / "b", *TINY, "threads=1")
    run_miga(tmp_path / "c", *TINY, "threads=2")
    assert (tmp_path / "a" / "samples.csv").read_bytes() == (
        tmp_path / "b" / "samples.csv"
    ).read_bytes()
    for name, threads in (("a", 1), ("c", 2)):
        record = json.loads((tmp_path / name / "provenance.json").read_text())
        assert record["config"]["threads"] == threads
        assert record["determinism"]["threads"] == threads  # read back from torch
        assert record["determinism"]["seed"] == 0
        assert record["determinism"]["device"] == "cpu"
        assert record["determinism"]["deterministic_algorithms"] is False
        assert record["determinism"]["cpu_model"]
        assert json.loads((tmp_path / name / "summary.json").read_text())["threads"] == threads
    # the thread count is part of the config: a folder made at 1 thread refuses 2
    hashes = {
        json.loads((tmp_path / n / "provenance.json").read_text())["config_hash"] for n in "abc"
    }
    assert len(hashes) == 2


@pytest.mark.parametrize("bad", [0, -1, "2", 1.5, True, None])
def test_threads_must_be_a_positive_integer(bad) -> None:
    before = torch.get_num_threads()
    with pytest.raises(ValueError, match="config key 'threads' must be a positive integer"):
        apply_threads(bad)
    assert torch.get_num_threads() == before


def test_apply_threads_sets_and_reads_back() -> None:
    before = torch.get_num_threads()
    try:
        assert apply_threads(3) == 3 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


# --- the documented-numbers checker (experiments/check_numbers.py) on a one-cell manifest ---

MANIFEST = """
cells:
  tiny: {{overrides: [{overrides}, threads=1]}}
numbers:
  - {{name: images, file: DOC.md, cell: tiny, key: n_images, stated: "{n}", text: "scores {n} images"}}
  - {{name: linf x255, file: DOC.md, cell: tiny, key: linf_max, scale: 255, stated: "{eps}",
     text: "budget {eps}/255"}}
  - {{name: linf column, file: DOC.md, cell: tiny, column: linf, reduce: max, stated: "0.0157",
     text: "max 0.0157"}}
"""


def check(tmp_path: Path, n: str, eps: str, doc: str, *extra: str) -> subprocess.CompletedProcess:
    manifest = tmp_path / "numbers.yaml"
    manifest.write_text(MANIFEST.format(overrides=", ".join(TINY), n=n, eps=eps))
    (tmp_path / "DOC.md").write_text(doc)
    return subprocess.run(
        [sys.executable, "-m", "experiments.check_numbers", "--manifest", str(manifest),
         "--root", str(tmp_path), "--workdir", str(tmp_path / "cells"), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def test_checker_passes_right_numbers_and_fails_wrong_or_drifted_ones(tmp_path) -> None:
    # Known answers: dataset.limit=2 scores 2 images; one Adam step of lr 0.1 (26x epsilon)
    # leaves every nonzero-gradient value of delta on the 4/255 ball: max |delta| = 4/255.
    doc = "It scores 2 images\nwithin a budget 4/255 (max 0.0157)."
    good = check(tmp_path, "2", "4", doc)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "3/3 numbers match" in good.stdout
    # a wrong stated number (in both the document and the manifest) fails, the others still pass
    wrong = check(tmp_path, "3", "4", doc.replace("2 images", "3 images"), "--reuse")
    assert wrong.returncode == 1
    assert "MISMATCH" in wrong.stdout and "2/3 numbers match" in wrong.stdout
    # precision is the printed one: 4.0 is 4 to one decimal, 4.1 is not
    assert check(tmp_path, "2", "4.0", doc.replace("4/255", "4.0/255"), "--reuse").returncode == 0
    assert check(tmp_path, "2", "4.1", doc.replace("4/255", "4.1/255"), "--reuse").returncode == 1
    # the document changed under the manifest: fails, naming the file and the text
    drifted = check(tmp_path, "2", "4", doc.replace("2 images", "two images"), "--reuse")
    assert drifted.returncode == 1
    assert "DOC.md no longer contains: 'scores 2 images'" in drifted.stdout


def test_checker_refuses_a_cell_without_a_thread_count(tmp_path) -> None:
    manifest = tmp_path / "numbers.yaml"
    manifest.write_text("cells:\n  c: {overrides: [logger=none]}\nnumbers: []\n")
    done = subprocess.run(
        [sys.executable, "-m", "experiments.check_numbers", "--manifest", str(manifest)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "cells.c.overrides" in done.stderr and "threads=" in done.stderr
