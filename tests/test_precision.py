"""Rows are computed in float32 whatever `trainer.precision` says.

Under `precision=bf16-mixed` Lightning's autocast covers the whole predict step; before the fix
D(x_n) and every per-image metric were computed in bf16 (SSIM off by up to 0.117 on one demo
image). Only the attack's own forward/backward may run in reduced precision.
"""

from __future__ import annotations

import pytest

from miga.callbacks.results_writer import read_rows
from tests.test_run_e2e import run_miga

pytestmark = pytest.mark.slow

CELL = ["dataset=demo_small", "attack.steps=1", "logger=none"]


def test_bf16_mixed_writes_the_fp32_columns_for_the_denoised_output(tmp_path) -> None:
    run_miga(tmp_path / "fp32", *CELL)
    run_miga(tmp_path / "bf16", *CELL, "trainer.precision=bf16-mixed")
    fp32 = read_rows(tmp_path / "fp32" / "samples.csv")
    bf16 = read_rows(tmp_path / "bf16" / "samples.csv")
    assert [r["id"] for r in fp32] == [r["id"] for r in bf16] and len(fp32) == 6
    for a, b in zip(fp32, bf16, strict=True):
        assert abs(a["psnr_noisy"] - b["psnr_noisy"]) < 1e-6
        assert abs(a["psnr_denoised"] - b["psnr_denoised"]) < 0.01
        assert abs(a["ssim_denoised"] - b["ssim_denoised"]) < 1e-4
        assert a["pred_denoised"] == b["pred_denoised"]
        assert a["pred_clean"] == b["pred_clean"]
        # δ itself comes from a bf16 attack, but is measured in fp32 and within the budget.
        assert b["linf"] <= 4 / 255 * (1 + 1e-5)
