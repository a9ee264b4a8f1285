"""Metrics against hand-computed values; the summary is the documented reduction of the rows."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from miga.metrics.quality import PSNR_CAP_DB, psnr, ssim
from miga.metrics.scorers import Classification, Outcome, PerturbationSize
from miga.metrics.summary import summarize
from tests.helpers import make_outcome


def test_psnr_is_per_image_not_pooled() -> None:
    target = torch.zeros(2, 3, 4, 4)
    pred = torch.stack([torch.full((3, 4, 4), 0.1), torch.full((3, 4, 4), 0.01)])
    # MSE 0.01 → 20 dB; MSE 1e-4 → 40 dB. Pooled would give 10·log10(1/0.00505) ≈ 22.97 dB.
    torch.testing.assert_close(psnr(pred, target), torch.tensor([20.0, 40.0]))


def test_psnr_of_identical_images_is_capped() -> None:
    image = torch.rand(1, 3, 8, 8)
    assert psnr(image, image).item() == PSNR_CAP_DB


def test_ssim_is_one_for_identical_and_lower_for_noisy() -> None:
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 32, 32, generator=generator)
    noisy = (image + 0.2 * torch.randn(image.shape, generator=generator)).clamp(0, 1)
    torch.testing.assert_close(ssim(image, image), torch.ones(2))
    assert (ssim(noisy, image) < 0.9).all()


def test_ssim_matches_scikit_image_with_the_same_gaussian_window() -> None:
    """An independent SSIM: scikit-image's, Gaussian window σ 1.5 (11 taps), population
    covariance, data range 1, on a small pair of natural-ish images. Our SSIM averages the map
    over the whole image with the borders reflect-padded (torchmetrics' definition), where
    scikit-image averages only the interior: so scikit-image runs on the reflect-padded pair and
    its map is averaged over the original pixels, whose windows lie inside the padded images."""
    from skimage.metrics import structural_similarity

    gen = torch.Generator().manual_seed(0)
    base = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 40, 40, generator=gen), 3, 1, 1)
    target = base[0, :, :32, :32]
    pred = (target + 0.08 * torch.randn(target.shape, generator=gen)).clamp(0, 1)
    ours = ssim(pred[None], target[None]).item()
    pad = lambda t: torch.nn.functional.pad(t[None], (5, 5, 5, 5), mode="reflect")[0]  # noqa: E731
    _, full_map = structural_similarity(
        pad(pred).double().numpy(),
        pad(target).double().numpy(),
        data_range=1.0,
        channel_axis=0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )
    reference = float(full_map[:, 5:-5, 5:-5].mean())
    assert 0.2 < reference < 0.95  # a pair where SSIM says something
    assert ours == pytest.approx(reference, abs=1e-4)


def test_perturbation_size_by_hand() -> None:
    delta = torch.zeros(1, 3, 2, 2)
    delta[0, 0, 0, 0], delta[0, 1, 1, 1] = 0.3, -0.4
    columns = PerturbationSize()(_outcome(delta=delta))
    assert columns["linf"].item() == pytest.approx(0.4)
    assert columns["l2"].item() == pytest.approx(0.5)
    assert columns["delta_mean"].item() == pytest.approx(-0.1 / 12)


class _FixedLogits(nn.Module):
    """Predicts class 0 for images whose mean is < 0.5, else class 1."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        high = (image.flatten(1).mean(1) >= 0.5).float()
        return torch.stack([1 - high, high], dim=1)


def test_success_counts_only_images_the_denoiser_kept_right() -> None:
    low, high = torch.zeros(3, 4, 4), torch.ones(3, 4, 4)
    # sample 0: denoised right (0), attacked flipped (1) → success 1
    # sample 1: denoised right (0), attacked still 0     → success 0
    # sample 2: denoised wrong (1 vs label 0)            → not eligible (NaN)
    outcome = _outcome(
        clean=torch.stack([low, low, low]),
        denoised=torch.stack([low, low, high]),
        attacked=torch.stack([high, low * 1.0001 + 0.0, high]),
        label=torch.tensor([0, 0, 0]),
        downstream=_FixedLogits(),
    )
    columns = Classification(stealth_psnr_db=30.0)(outcome)
    assert columns["correct_denoised"].tolist() == [1.0, 1.0, 0.0]
    assert columns["success"][:2].tolist() == [1.0, 0.0] and math.isnan(columns["success"][2])
    # sample 0 flipped with PSNR(attacked, denoised) = 0 dB: not stealthy
    assert columns["stealth_success"][:2].tolist() == [0.0, 0.0]


def test_a_flip_invisible_in_the_output_is_a_stealth_success() -> None:
    """Mean 0.499 → 0.501 flips `_FixedLogits` at PSNR(attacked, denoised) = 54 dB ≥ 30 dB;
    the same flip at 0.499 → 0.60 (PSNR 19.9 dB) is a success but not a stealthy one."""
    image = torch.full((2, 3, 4, 4), 0.499)
    outcome = _outcome(
        clean=image,
        denoised=image,
        attacked=torch.stack([torch.full((3, 4, 4), 0.501), torch.full((3, 4, 4), 0.60)]),
        label=torch.tensor([0, 0]),
        downstream=_FixedLogits(),
    )
    columns = Classification(stealth_psnr_db=30.0)(outcome)
    assert columns["success"].tolist() == [1.0, 1.0]
    assert columns["stealth_success"].tolist() == [1.0, 0.0]


def test_summary_reduces_rows_as_documented() -> None:
    rows = [
        {"correct_denoised": 1.0, "psnr_attacked": 30.0, "linf": 0.01, "l2": 1.0, "success": 1.0},
        {
            "correct_denoised": 0.0,
            "psnr_attacked": 20.0,
            "linf": 0.02,
            "l2": 3.0,
            "success": float("nan"),
        },
    ]
    summary = summarize(rows)
    points = {k: v for k, v in summary.items() if not k.endswith("_ci95")}
    assert points == {
        "n_images": 2,
        "acc_denoised": 0.5,
        "psnr_attacked": 25.0,
        "linf_max": 0.02,
        "linf_mean": 0.015,
        "l2_mean": 2.0,
        "l2_max": 3.0,
        "success_rate": 1.0,
    }
    assert set(summary) - set(points) == {
        f"{k}_ci95"
        for k in ("acc_denoised", "psnr_attacked", "linf_mean", "l2_mean", "success_rate")
    }


def _outcome(**fields) -> Outcome:
    return make_outcome(fields.pop("clean", torch.zeros(1, 3, 2, 2)), **fields)


def test_class_names_sit_beside_every_class_index_column(tmp_path) -> None:
    """The writer's samples.csv names each class index (prefixed scorers too); a missing or
    out-of-range index gets an empty name; the parts it resumes from stay numbers only, and
    the summary is the same as without names."""
    from miga.callbacks.results_writer import PARTS_DIR, ResultsWriter, read_rows, rows_to_csv

    rows = [
        {"id": 0, "label": 1, "pred_attacked": 2, "heldout_pred_clean": 0, "success": 1.0},
        {"id": 1, "label": 0, "pred_attacked": 7, "heldout_pred_clean": 1, "success": math.nan},
    ]
    (tmp_path / PARTS_DIR).mkdir()
    (tmp_path / PARTS_DIR / "rank0-00000000.csv").write_text(rows_to_csv(rows))
    named = ResultsWriter(tmp_path, class_names=["cat", "dog", "eel"]).merge()
    samples = read_rows(tmp_path / "samples.csv")
    assert list(samples[0]) == [
        "id", "label", "label_name", "pred_attacked", "pred_attacked_name",
        "heldout_pred_clean", "heldout_pred_clean_name", "success",
    ]  # fmt: skip
    assert [r["label_name"] for r in samples] == ["dog", "cat"]
    assert [r["pred_attacked_name"] for r in samples] == ["eel", ""]  # 7: no such class
    assert [r["heldout_pred_clean_name"] for r in samples] == ["cat", "dog"]
    parts = read_rows(tmp_path / PARTS_DIR / "rank0-00000000.csv")
    assert all(isinstance(v, int | float) for row in parts for v in row.values())
    plain = ResultsWriter(tmp_path).merge()
    assert json_equal(named, plain)


def json_equal(a: dict, b: dict) -> bool:
    import json

    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
