import math

import numpy as np

from miga.metrics.intervals import Z95, bootstrap_mean, paired_bootstrap_diff, wilson


def test_wilson_closed_form_at_extremes():
    n = 14
    lo, hi = wilson(0, n)
    assert math.isclose(lo, 0.0, abs_tol=1e-12) and math.isclose(
        hi, Z95**2 / (n + Z95**2), rel_tol=1e-12
    )
    lo, hi = wilson(n, n)
    assert math.isclose(hi, 1.0, abs_tol=1e-12) and math.isclose(
        lo, n / (n + Z95**2), rel_tol=1e-12
    )


def test_bootstrap_constant_column_and_identical_pairs():
    assert bootstrap_mean([0.7] * 10, seed=0) == (0.7, 0.7)
    col = list(np.random.default_rng(1).normal(size=14))
    assert paired_bootstrap_diff(col, col, seed=0) == (0.0, 0.0)
    assert bootstrap_mean(col, seed=3) == bootstrap_mean(col, seed=3)


def test_wilson_coverage_sanity():
    rng = np.random.default_rng(0)
    p, n = 0.3, 14
    hits = sum(lo <= p <= hi for lo, hi in (wilson(int(k), n) for k in rng.binomial(n, p, 2000)))
    assert 0.92 <= hits / 2000 <= 0.99


def test_summary_carries_an_interval_beside_every_mean_and_rate():
    from miga.metrics.summary import summarize

    rows = [
        {"id": i, "success": s, "psnr_attacked": 30.0, "l2": float(i), "linf": 0.01}
        for i, s in enumerate([1.0, 1.0, math.nan, 0.0, 1.0])
    ]
    summary = summarize(rows, seed=7)
    # NaN (not applicable) rows are out of the rate and out of its interval: 3 of 4
    assert summary["success_rate"] == 0.75
    assert summary["success_rate_ci95"] == list(wilson(3, 4))
    assert summary["psnr_attacked_ci95"] == [30.0, 30.0]  # a constant column
    lo, hi = summary["l2_mean_ci95"]
    assert 0.0 <= lo < summary["l2_mean"] < hi <= 4.0
    assert summarize(rows, seed=7) == summary  # the seed fixes the bootstrap
    assert "linf_max_ci95" not in summary
