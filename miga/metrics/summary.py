"""How `summary.json` is computed from the rows of `samples.csv` (one place, one contract).

Every summary value is a reduction of one column over the rows, so a summary can always be
recomputed from its samples file; the README documents each key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from miga.metrics.intervals import bootstrap_mean, wilson

#: summary key → (column, reduction). Rows lacking the column leave the key out.
SUMMARY_RULES: dict[str, tuple[str, str]] = {
    "acc_clean": ("correct_clean", "mean"),
    "acc_denoised": ("correct_denoised", "mean"),
    "acc_attacked": ("correct_attacked", "mean"),
    "psnr_noisy": ("psnr_noisy", "mean"),
    "psnr_denoised": ("psnr_denoised", "mean"),
    "psnr_attacked": ("psnr_attacked", "mean"),
    "psnr_attacked_vs_denoised": ("psnr_attacked_vs_denoised", "mean"),
    "ssim_denoised": ("ssim_denoised", "mean"),
    "ssim_attacked": ("ssim_attacked", "mean"),
    "ssim_attacked_vs_denoised": ("ssim_attacked_vs_denoised", "mean"),
    "linf_max": ("linf", "max"),
    "l2_mean": ("l2", "mean"),
    "success_rate": ("success", "nanmean"),
    "stealth_success_rate": ("stealth_success", "nanmean"),
    # The same, judged by a classifier the attack never saw (metrics.heldout_downstream).
    "heldout_acc_clean": ("heldout_correct_clean", "mean"),
    "heldout_acc_denoised": ("heldout_correct_denoised", "mean"),
    "heldout_acc_attacked": ("heldout_correct_attacked", "mean"),
    "heldout_success_rate": ("heldout_success", "nanmean"),
    "heldout_stealth_success_rate": ("heldout_stealth_success", "nanmean"),
    "steps_mean": ("steps", "mean"),
    "n_flagged": ("flagged", "sum"),
    # Comparison of attacks at equal budget (scorers DeltaPSNR, TargetedSuccess, LPIPS).
    "psnr_perturbed_vs_noisy": ("psnr_perturbed_vs_noisy", "mean"),
    "delta_psnr": ("delta_psnr", "mean"),
    "linf_mean": ("linf", "mean"),
    "l2_max": ("l2", "max"),
    "delta_mean": ("delta_mean", "mean"),
    "targeted_success_rate": ("targeted_success", "nanmean"),
    "target_hit_rate": ("target_hit", "mean"),
    "lpips_attacked": ("lpips_attacked", "mean"),
    "lpips_attacked_vs_denoised": ("lpips_attacked_vs_denoised", "mean"),
    # Unknown-task cells (miga.metrics.semantic): OCR, feature shift, similarity to the reference.
    "rouge_denoised": ("rouge_denoised", "nanmean"),
    "rouge_attacked": ("rouge_attacked", "nanmean"),
    "rouge_attacked_vs_reference": ("rouge_attacked_vs_reference", "nanmean"),
    "feat_cos_attacked_clean": ("feat_cos_attacked_clean", "mean"),
    "feat_cos_denoised_clean": ("feat_cos_denoised_clean", "mean"),
    "feat_cos_attacked_reference": ("feat_cos_attacked_reference", "mean"),
    "feat_cos_denoised_reference": ("feat_cos_denoised_reference", "mean"),
    "psnr_attacked_vs_reference": ("psnr_attacked_vs_reference", "mean"),
    "ssim_attacked_vs_reference": ("ssim_attacked_vs_reference", "mean"),
    "psnr_denoised_vs_reference": ("psnr_denoised_vs_reference", "mean"),
    "ssim_denoised_vs_reference": ("ssim_denoised_vs_reference", "mean"),
    # The attack's own critic (what it maximised) and a held-out judge (miga.metrics.critic_score).
    "attack_critic_denoised": ("attack_critic_denoised", "mean"),
    "attack_critic_attacked": ("attack_critic_attacked", "mean"),
    "heldout_critic_denoised": ("heldout_critic_denoised", "mean"),
    "heldout_critic_attacked": ("heldout_critic_attacked", "mean"),
    # The worst case over an ensemble (attack=worst_case, miga.attacks.worst_case).
    "robust_accuracy": ("robust", "nanmean"),
    "n_masked_gradient": ("masked_gradient", "sum"),
}

#: Text columns whose values are counted: `<column>_<value>` = rows with that value (empty
#: values not counted; a value no row has has no key, i.e. 0).
COUNT_COLUMNS: tuple[str, ...] = ("broken_by",)


#: Keys whose column is a 0/1 indicator: their interval is Wilson's; other means bootstrap.
RATE_KEYS: frozenset[str] = frozenset(
    {
        "acc_clean",
        "acc_denoised",
        "acc_attacked",
        "success_rate",
        "stealth_success_rate",
        "targeted_success_rate",
        "target_hit_rate",
        "heldout_acc_clean",
        "heldout_acc_denoised",
        "heldout_acc_attacked",
        "heldout_success_rate",
        "heldout_stealth_success_rate",
        "robust_accuracy",
    }
)
#: Suffix of a key's 95 % interval in `summary.json` (`success_rate_ci95: [lo, hi]`).
CI_SUFFIX = "_ci95"


def _reduce(values: Sequence[float], how: str) -> float:
    finite = [v for v in values if not math.isnan(v)]
    if how == "nanmean":
        return sum(finite) / len(finite) if finite else float("nan")
    if not values:
        return float("nan")
    if how == "mean":
        return sum(values) / len(values)
    if how == "max":
        return max(values)
    if how == "sum":
        return sum(values)
    raise ValueError(f"unknown reduction '{how}'")


def summarize(rows: Sequence[Mapping[str, float]], seed: int = 0) -> dict[str, object]:
    """Aggregate per-image rows into the summary contract (`n_images` + `SUMMARY_RULES`).

    Every mean and rate also gets `<key>_ci95: [lo, hi]` (`intervals`); the point keys stay
    exactly what they were, so readers of the contract are unaffected.
    """
    summary: dict[str, object] = {"n_images": len(rows)}
    for key, (column, how) in SUMMARY_RULES.items():
        if rows and column in rows[0]:
            summary[key] = _reduce([float(row[column]) for row in rows], how)
    summary.update(value_counts(rows))
    summary.update(intervals(rows, seed))
    summary.update(sensor_summary(rows, seed))
    return summary


def value_counts(rows: Sequence[Mapping[str, object]]) -> dict[str, int]:
    """`broken_by_<member>`: how many rows each ensemble member broke (`COUNT_COLUMNS`)."""
    out: dict[str, int] = {}
    for column in COUNT_COLUMNS:
        if not rows or column not in rows[0]:
            continue
        for row in rows:
            value = row[column]
            if value != "" and not (isinstance(value, float) and math.isnan(value)):
                key = f"{column}_{value}"
                out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


#: Prefix of the sensor threat model's per-draw columns (`sensor<m>_<column>`) and its keys.
SENSOR_PREFIX = "sensor"


def sensor_summary(rows: Sequence[Mapping[str, float]], seed: int) -> dict[str, object]:
    """Reductions over the sensor's fresh draws (miga.threats.sensor), for every mean/rate key
    whose column was scored per draw: `sensor_<key>` the mean over draws of the per-draw
    value, `sensor_<key>_std` its spread across draws (sample std; 0 for one draw),
    `sensor_<key>_draws` the per-draw values, and `sensor_<key>_ci95` a bootstrap over images
    of each image's mean over its draws (draws of one image are not independent samples).
    """
    out: dict[str, object] = {}
    if not rows:
        return out
    for key, (column, how) in SUMMARY_RULES.items():
        names = []
        while f"{SENSOR_PREFIX}{len(names)}_{column}" in rows[0]:
            names.append(f"{SENSOR_PREFIX}{len(names)}_{column}")
        if not names or how not in ("mean", "nanmean"):
            continue
        table = np.array([[float(row[name]) for name in names] for row in rows])  # images×draws
        per_draw = [float(_reduce(list(table[:, m]), how)) for m in range(len(names))]
        with np.errstate(all="ignore"):
            per_image = [float(np.nanmean(r)) if np.isfinite(r).any() else math.nan for r in table]
        name = f"{SENSOR_PREFIX}_{key}"
        out[name] = float(np.mean(per_draw))
        out[name + "_std"] = float(np.std(per_draw, ddof=1)) if len(per_draw) > 1 else 0.0
        out[name + "_draws"] = per_draw
        out[name + CI_SUFFIX] = list(bootstrap_mean(per_image, seed))
    return out


def intervals(rows: Sequence[Mapping[str, float]], seed: int) -> dict[str, list[float]]:
    """95 % intervals of every mean and rate: Wilson for 0/1 columns, bootstrap over images.

    NaN cells (not applicable, e.g. success where the clean prediction was already wrong) are
    left out, as the point value leaves them out. Every key's bootstrap draws the same image
    resamples (one seed), so intervals of related keys are computed on the same resamples.
    """
    out: dict[str, list[float]] = {}
    for key, (column, how) in SUMMARY_RULES.items():
        if how not in ("mean", "nanmean") or not rows or column not in rows[0]:
            continue
        values = [float(row[column]) for row in rows]
        finite = [v for v in values if not math.isnan(v)]
        if how == "mean" and len(finite) < len(values):
            lo, hi = math.nan, math.nan  # the point value is NaN too
        elif key in RATE_KEYS:
            lo, hi = wilson(round(sum(finite)), len(finite))
        else:
            lo, hi = bootstrap_mean(finite, seed)
        out[key + CI_SUFFIX] = [lo, hi]
    return out
