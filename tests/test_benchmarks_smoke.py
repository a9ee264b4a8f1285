"""`python -m benchmarks.attack_step` runs end to end and reports its ratios.

Shape only: the keys exist and the ratios are positive finite numbers. No timing assertions —
speed depends on the machine and its load; the numbers belong in benchmarks/README.md.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

#: The smallest run that still goes through every default part but the options (which
#: start a full-size Restormer in three more processes).
TINY = [
    "batch=2",
    "size=32",
    "steps=1",
    "reps=1",
    "threads=1",
    "options=false",
    "dataset.limit=2",
    "attack.steps=1",
]
RATIOS = (
    "ratio_vs_raw",
    "cpu_ratio_vs_raw",
    "ratio_vs_torchattacks",
    "ratio_vs_torchattacks_early_stop",
    "ratio_ifgsm_vs_torchattacks",
    "ratio_ifgsm_vs_raw",
    "ratio_lightning_vs_loop",
    "peak_mem_ratio",
    "images_per_s",
    "step_images_per_s",
    "cell_cost_vs_naive",
    "cell_cost_vs_naive_early_stop",
)


def _benchmark(module: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m benchmarks.<module> <args>` from the repo root; it must exit 0."""
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_attack_step_benchmark_prints_one_json_line_of_ratios(tmp_path) -> None:
    out = tmp_path / "result.json"
    done = _benchmark("attack_step", *TINY, f"out={out}")
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout[-2000:]  # everything else goes to stderr
    result = json.loads(lines[0])
    for key in RATIOS:
        value = result[key]
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, (key, value)
    assert result["baseline"] == "inline" or result["baseline"].startswith("torchattacks")
    assert result["cell_early_stop_override"].startswith("attack.stopping=")
    assert (result["batch"], result["size"], result["steps"]) == (2, 32, 1)
    assert json.loads(out.read_text()) == result


def test_denoiser_cost_prints_one_row_per_model_and_checkpointing_mode() -> None:
    """`python -m benchmarks.denoiser_cost` (a Hydra app): one JSON row per (model,
    checkpointing), each from its own process; DnCNN's parameter count is the official file's
    (docs/checkpoints.md), and the `on` rows carry their ratios against the `off` rows."""
    done = _benchmark(
        "denoiser_cost",
        "models=[dncnn,nafnet_width32]",
        "shape=[1,3,32,32]",
        "reps=1",
        "checkpointing=both",
        "devices=[cpu]",
        timeout=300,
    )
    rows = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [(r["model"], r["activation_checkpointing"]) for r in rows] == [
        ("dncnn", False),
        ("dncnn", True),
        ("nafnet_width32", False),
        ("nafnet_width32", True),
    ]
    assert rows[0]["params_m"] == 0.668 and rows[0]["time_ratio_vs_dncnn"] == 1.0
    for row in rows:
        assert math.isfinite(row["fwd_bwd_s"]) and row["fwd_bwd_s"] > 0 and row["reps"] == 1
    for row in rows[1::2]:
        assert row["ckpt_time_ratio"] > 0 and math.isfinite(row["ckpt_step_mem_ratio"])
