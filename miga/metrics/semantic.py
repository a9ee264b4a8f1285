"""Scorers of the unknown-task cells: did the semantics of D(x_n+δ) move, and where to?

- `OCRScorer` (text tampering): ROUGE-L F between the text read in D(x_n) / D(x_n+δ) and the
  text read in x (and in the reference);
- `FeatureShift` (any pair set): cosine similarity of a frozen backbone's embeddings;
- `ReferenceSimilarity` (any pair set, no model): PSNR/SSIM of D(x_n+δ) against the reference.

Scorers that need a model get it from their own config entry (a nested `_target_`), never from
the cell's downstream model. Columns are documented on each class.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.functional.text import rouge_score

from miga.metrics.quality import psnr, ssim
from miga.metrics.scorers import Columns, Outcome, Scorer

log = logging.getLogger(__name__)


def rouge_l(prediction: str, target: str) -> float:
    """ROUGE-L F-measure of `prediction` against `target` (torchmetrics' tokenizer: lower-case,
    alphanumeric words). NaN when `target` has no words: there was no text to preserve."""
    if not re.search(r"[a-z0-9]", target.lower()):
        return math.nan
    return float(rouge_score(prediction, target, rouge_keys="rougeL")["rougeL_fmeasure"])


def _rouge_column(predictions: Sequence[str], targets: Sequence[str], like: Tensor) -> Tensor:
    values = [rouge_l(p, t) for p, t in zip(predictions, targets, strict=True)]
    return torch.tensor(values, dtype=torch.float64, device=like.device)


class OCRScorer(Scorer):
    """Text read by OCR, compared with ROUGE-L.

    Columns: `rouge_denoised` = ROUGE-L(OCR(D(x_n)), OCR(x)); `rouge_attacked` =
    ROUGE-L(OCR(D(x_n+δ)), OCR(x)); `rouge_attacked_vs_reference` = ROUGE-L(OCR(D(x_n+δ)),
    OCR(reference)) when the dataset has references; `ocr_words_clean` = words read in x.
    A ROUGE value is NaN where its target text is empty (summaries use nanmean).

    Args:
        ocr: a model mapping [0,1] RGB NCHW to one string per image (`TesseractOCR`).
    """

    def __init__(self, ocr: Callable[[Tensor], list[str]]) -> None:
        self.ocr = ocr

    @torch.no_grad()
    def __call__(self, o: Outcome) -> Columns:
        clean = self.ocr(o.clean)
        denoised = self.ocr(o.denoised)
        attacked = self.ocr(o.attacked)
        columns = {
            "ocr_words_clean": torch.tensor(
                [float(len(text.split())) for text in clean], device=o.clean.device
            ),
            "rouge_denoised": _rouge_column(denoised, clean, o.clean),
            "rouge_attacked": _rouge_column(attacked, clean, o.clean),
        }
        if o.reference is not None:
            reference = self.ocr(o.reference)
            columns["rouge_attacked_vs_reference"] = _rouge_column(attacked, reference, o.clean)
        return columns


def _cosine(a: Tensor, b: Tensor) -> Tensor:
    return F.cosine_similarity(a.flatten(1).double(), b.flatten(1).double(), dim=1)


class FeatureShift(Scorer):
    """Cosine similarity of embeddings f (a frozen backbone, e.g. `timm_features`).

    Columns: `feat_cos_attacked_clean` = cos(f(D(x_n+δ)), f(x)), `feat_cos_denoised_clean` =
    cos(f(D(x_n)), f(x)), and with references `feat_cos_attacked_reference` =
    cos(f(D(x_n+δ)), f(reference)), `feat_cos_denoised_reference` = cos(f(D(x_n)), f(reference)).
    `model=None` turns the scorer off (no columns), so a metrics config can carry it optionally.
    """

    def __init__(self, model: nn.Module | None) -> None:
        self.model = model
        if model is None:
            log.info("FeatureShift: no feature model configured, no feat_cos_* columns")
        else:
            model.requires_grad_(False).eval()

    @torch.no_grad()
    def __call__(self, o: Outcome) -> Columns:
        if self.model is None:
            return {}
        model = self.model.to(o.clean.device)
        clean, denoised, attacked = model(o.clean), model(o.denoised), model(o.attacked)
        columns = {
            "feat_cos_attacked_clean": _cosine(attacked, clean),
            "feat_cos_denoised_clean": _cosine(denoised, clean),
        }
        if o.reference is not None:
            reference = model(o.reference)
            columns["feat_cos_attacked_reference"] = _cosine(attacked, reference)
            columns["feat_cos_denoised_reference"] = _cosine(denoised, reference)
        return columns


class ReferenceSimilarity(Scorer):
    """PSNR/SSIM against the reference image (no model; per image, data range 1).

    Columns: `psnr_attacked_vs_reference`, `ssim_attacked_vs_reference` (D(x_n+δ) vs reference)
    and, as their baseline, `psnr_denoised_vs_reference`, `ssim_denoised_vs_reference`.
    No columns when the dataset has no references.
    """

    def __call__(self, o: Outcome) -> Columns:
        if o.reference is None:
            return {}
        if o.reference.shape != o.attacked.shape:
            raise ValueError(
                f"reference {tuple(o.reference.shape)} and output {tuple(o.attacked.shape)} "
                f"differ in shape: the dataset must give both at the same size"
            )
        return {
            "psnr_attacked_vs_reference": psnr(o.attacked, o.reference, o.sizes),
            "ssim_attacked_vs_reference": ssim(o.attacked, o.reference, o.sizes),
            "psnr_denoised_vs_reference": psnr(o.denoised, o.reference, o.sizes),
            "ssim_denoised_vs_reference": ssim(o.denoised, o.reference, o.sizes),
        }
