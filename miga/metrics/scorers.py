"""Scorers turn one attacked batch into per-image result columns.

The module runs every configured scorer on an `Outcome` and merges their columns into the
rows of `samples.csv`; new metrics are new scorers, never edits to the module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from miga.attacks.base import AttackResult
from miga.metrics.quality import psnr, ssim
from miga.utils.images import crop_center

Columns = dict[str, Tensor]
#: What a config gives: name-keyed scorers (`metrics.scorers.<name>`, null switches one off).
Scorers = Mapping[str, "Scorer | None"] | Sequence["Scorer"]


def scorer_list(scorers: Scorers) -> list[Scorer]:
    """The scorers to run, in order: a name-keyed mapping's non-null values, or the sequence.

    The config keeps scorers keyed by name so that one metrics choice extends another and any
    scorer is overridable (`metrics.scorers.lpips.net=vgg`) or removable (`…lpips=null`)."""
    values = scorers.values() if isinstance(scorers, Mapping) else scorers
    return [scorer for scorer in values if scorer is not None]


@dataclass
class Outcome:
    """Everything known about a batch after its attack (all tensors detached)."""

    clean: Tensor
    noisy: Tensor
    denoised: Tensor
    perturbed: Tensor
    attacked: Tensor
    delta: Tensor
    result: AttackResult
    label: Tensor | None = None
    reference: Tensor | None = None
    downstream: nn.Module | None = None
    #: (B, 2) each image's (h, w) inside a padded batch (loader=pad_center); None: not padded.
    sizes: Tensor | None = None


class Scorer(ABC):
    """Base: `__call__(outcome) -> {column: (B,) tensor}`."""

    @abstractmethod
    def __call__(self, outcome: Outcome) -> Columns:
        """Per-image columns for this batch."""


class ImageQuality(Scorer):
    """PSNR/SSIM of D(x_n) and D(x_n+δ) against x, of D(x_n+δ) against D(x_n), of x_n+δ vs x_n.

    In a padded batch (`loader=pad_center`) each image is scored on its own region only."""

    def __call__(self, o: Outcome) -> Columns:
        n = o.sizes  # padded batches: each image scored on its unpadded region
        return {
            "psnr_noisy": psnr(o.noisy, o.clean, n),
            "psnr_denoised": psnr(o.denoised, o.clean, n),
            "psnr_attacked": psnr(o.attacked, o.clean, n),
            "psnr_attacked_vs_denoised": psnr(o.attacked, o.denoised, n),
            "psnr_perturbed_vs_noisy": psnr(o.perturbed, o.noisy, n),
            "ssim_denoised": ssim(o.denoised, o.clean, n),
            "ssim_attacked": ssim(o.attacked, o.clean, n),
            "ssim_attacked_vs_denoised": ssim(o.attacked, o.denoised, n),
        }


class PerturbationSize(Scorer):
    """‖δ‖∞, ‖δ‖₂ and mean(δ) of each image (δ in [0,1] units); in a padded batch, of the δ
    on the image's own region (what the padding carries reaches no image)."""

    def __call__(self, o: Outcome) -> Columns:
        if o.sizes is None:
            flats = [o.delta.flatten(1)]
        else:
            flats = [crop.flatten(1) for crop in crop_center(o.delta, o.sizes)]
        return {
            "linf": torch.cat([flat.abs().amax(dim=1) for flat in flats]),
            "l2": torch.cat([flat.norm(dim=1) for flat in flats]),
            "delta_mean": torch.cat([flat.mean(dim=1) for flat in flats]),
        }


class Classification(Scorer):
    """Task-model predictions on x, D(x_n), D(x_n+δ), and the attack's success.

    `success` is 1 when D(x_n) was classified correctly and D(x_n+δ) is not, 0 when D(x_n) was
    correct and still is, and NaN (not eligible) when D(x_n) was already wrong.
    `stealth_success` additionally requires PSNR(D(x_n+δ), D(x_n)) ≥ `stealth_psnr_db`:
    a flip a person looking at the output would not notice.
    """

    prefix = ""

    def __init__(self, stealth_psnr_db: float = 30.0) -> None:
        self.stealth_psnr_db = stealth_psnr_db

    def model(self, o: Outcome) -> nn.Module | None:
        """The classifier that judges: the cell's downstream model (the one attacked)."""
        return o.downstream

    @torch.no_grad()
    def __call__(self, o: Outcome) -> Columns:
        model = self.model(o)
        if model is None or o.label is None:
            return {}
        preds = {
            name: model(image).argmax(dim=1)
            for name, image in (
                ("clean", o.clean),
                ("denoised", o.denoised),
                ("attacked", o.attacked),
            )
        }
        correct = {name: (pred == o.label).float() for name, pred in preds.items()}
        eligible = correct["denoised"].bool()
        flipped = 1.0 - correct["attacked"]
        stealthy = (psnr(o.attacked, o.denoised, o.sizes) >= self.stealth_psnr_db).float()
        nan = torch.full_like(flipped, float("nan"))
        columns = {
            **{f"pred_{name}": pred for name, pred in preds.items()},
            **{f"correct_{name}": value for name, value in correct.items()},
            "success": torch.where(eligible, flipped, nan),
            "stealth_success": torch.where(eligible, flipped * stealthy, nan),
        }
        label = {} if self.prefix else {"label": o.label}
        return {**label, **{self.prefix + key: value for key, value in columns.items()}}


class HeldoutClassification(Classification):
    """The same columns, `heldout_`-prefixed, from a classifier the attack never saw.

    Anything the attack optimised cannot be its own judge: `heldout_success` is the transfer
    of δ to a second, separately trained classifier (`metrics.heldout_downstream`); with none
    configured the scorer adds no columns.
    """

    prefix = "heldout_"

    def __init__(self, downstream: nn.Module | None, stealth_psnr_db: float = 30.0) -> None:
        super().__init__(stealth_psnr_db)
        self.downstream = downstream.eval().requires_grad_(False) if downstream else None

    def model(self, o: Outcome) -> nn.Module | None:
        if self.downstream is None:
            return None
        return self.downstream.to(o.clean.device)


class AttackBookkeeping(Scorer):
    """Steps taken, and whether the sample was flagged (non-finite loss) or stopped early.

    An ensemble (`attack=worst_case`) adds its verdicts: `broken_by` (the member whose δ was
    kept, "" where none broke the image), `robust` (1 where no member broke it, NaN where
    D(x_n) was already wrong: not eligible, as for `success`) and `masked_gradient` (1 where
    only a gradient-free member broke it). A single attack has no such columns: its `success`
    says the same.
    """

    def __call__(self, o: Outcome) -> Columns:
        columns: Columns = {
            "steps": o.result.steps,
            "flagged": o.result.flagged.float(),
            "stopped_early": o.result.stopped.float(),
        }
        if o.result.broken_by is not None:
            broken = o.result.stopped.float()
            nan = torch.full_like(broken, float("nan"))
            columns["broken_by"] = list(o.result.broken_by)  # type: ignore[assignment]
            columns["robust"] = torch.where(o.result.eligible, 1.0 - broken, nan)
            columns["masked_gradient"] = o.result.masked_gradient.float()
        return columns


class DeltaPSNR(Scorer):
    """`delta_psnr` = PSNR(D(x_n), x) − PSNR(D(x_n+δ), x) in dB: the quality the attack costs."""

    def __call__(self, o: Outcome) -> Columns:
        return {
            "delta_psnr": psnr(o.denoised, o.clean, o.sizes) - psnr(o.attacked, o.clean, o.sizes)
        }


class TargetedSuccess(Scorer):
    """With a target class t set: did the downstream model read t from D(x_n+δ)?

    `target_hit` is 1 when D(x_n+δ) is classified as t; `targeted_success` is the same but NaN
    (not eligible) for samples whose true label already is t. No target: no columns.
    """

    def __init__(self, target_class: int | None = None) -> None:
        self.target_class = target_class

    @torch.no_grad()
    def __call__(self, o: Outcome) -> Columns:
        if self.target_class is None or o.downstream is None:
            return {}
        hit = (o.downstream(o.attacked).argmax(dim=1) == self.target_class).float()
        columns = {
            "target_class": torch.full_like(hit, float(self.target_class)),
            "target_hit": hit,
        }
        if o.label is not None:
            eligible = o.label != self.target_class
            columns["targeted_success"] = torch.where(
                eligible, hit, torch.full_like(hit, torch.nan)
            )
        return columns
