"""`python -m benchmarks.gpu`, the prepared GPU check, proven on CPU before accelerator time is
spent: its tiny path runs every part for every denoiser and gives finite numbers under every key,
and its own time budget holds: what does not fit is skipped and listed, and the script exits 0.

Keys and finite values only — no timing assertions (speed belongs in benchmarks/README.md).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import CONF, REPO

pytestmark = pytest.mark.slow

SETTINGS = OmegaConf.load(CONF / "bench_gpu.yaml")
DENOISERS = list(SETTINGS.denoisers)
PARTS = list(SETTINGS.parts)


def _check(tmp_path: Path, *args: str) -> tuple[dict, str]:
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "tiny=true", "device=cpu", f"out={out}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_the_tiny_path_measures_every_part_of_every_denoiser(tmp_path: Path) -> None:
    result, table = _check(tmp_path)
    assert result["skipped"] == []
    assert set(result["parts"]) == set(PARTS)
    for part in PARTS:
        assert set(result["parts"][part]) == set(DENOISERS), part
    for name in DENOISERS:
        step = result["parts"]["step"][name]
        for precision in ("fp32", "bf16"):
            for key in ("ratio_vs_raw", "raw_fwd_bwd_s", "attack_step_s"):
                assert _positive(step[precision][key]), (name, precision, key)
        assert step["host_reads_per_step"] == 0  # the loop never waits on the device
        drift = result["parts"]["drift"][name]
        for key in ("output_max_abs_diff", "psnr_fp32_db", "psnr_bf16_db"):
            assert _positive(drift[key]), (name, key)
        assert 0 <= drift["success_disagree"] <= 1
        cell = result["parts"]["cell"][name]
        assert _positive(cell["images_per_s"]) and _positive(cell["images_per_s_early_stop"])
        assert (
            cell["steps_mean_early_stop"] <= cell["steps_mean"] == SETTINGS.tiny_settings.cell_steps
        )
        memory = result["parts"]["memory"][name]
        for mode in ("plain", "checkpointing"):
            assert _positive(memory[mode]["saved_mb"]) and memory[mode]["largest_batch"] >= 2
        assert _positive(memory["saved_ratio"]) and memory["saved_ratio"] <= 1.0
        for part in ("channels_last", "compile"):
            assert _positive(result["parts"][part][name][f"{part}_time_ratio"]), (name, part)
    # checkpointing keeps fewer activations wherever the architecture has blocks
    assert result["parts"]["memory"]["restormer"]["saved_ratio"] < 0.5
    assert result["parts"]["memory"]["dncnn"]["saved_ratio"] == 1.0  # DnCNN has none
    for key in ("torch", "device", "python"):
        assert result["versions"][key]
    assert "### step" in table and "| restormer |" in table


def test_a_budget_too_small_for_anything_exits_0_and_lists_every_skip(tmp_path: Path) -> None:
    result, table = _check(tmp_path, "budget_s=0")
    assert all(rows == {} for rows in result["parts"].values())
    skipped = {(s["part"], s["denoiser"]) for s in result["skipped"]}
    assert skipped == {(part, name) for part in PARTS for name in DENOISERS}
    assert "skipped:" in table


def test_a_part_whose_estimate_exceeds_what_is_left_is_skipped_and_listed(tmp_path: Path) -> None:
    """Budget 120 s; a 10⁶-step cell part is estimated from each denoiser's measured step time
    far beyond it: every step part is measured, every cell part skipped with its estimate."""
    result, _ = _check(tmp_path, "budget_s=120", "cell_steps=1000000", "parts=[step,cell]")
    assert set(result["parts"]["step"]) == set(DENOISERS)
    assert result["parts"]["cell"] == {}
    assert sorted(s["denoiser"] for s in result["skipped"]) == sorted(DENOISERS)
    for skip in result["skipped"]:
        assert skip["part"] == "cell" and skip["needs_s"] > skip["left_s"] > 0
