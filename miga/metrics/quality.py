"""Per-image image-quality metrics (torchmetrics' functional forms, never batch-pooled).

torchmetrics' PSNR pools squared error over the whole batch by default; every function here
returns one value per image (docs/architecture.md §6), with a fixed data range of 1.0.
"""

from __future__ import annotations

from torch import Tensor
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

#: PSNR of identical images is infinite; rows store this cap so means stay finite.
PSNR_CAP_DB = 100.0


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """PSNR in dB of each image pair (B,), data range 1, capped at `PSNR_CAP_DB`."""
    values = peak_signal_noise_ratio(
        pred.float(), target.float(), data_range=1.0, reduction="none", dim=(1, 2, 3)
    )
    return values.clamp(max=PSNR_CAP_DB)


def ssim(pred: Tensor, target: Tensor) -> Tensor:
    """SSIM (Gaussian window 11, σ 1.5) of each image pair (B,), data range 1."""
    return structural_similarity_index_measure(
        pred.float(), target.float(), data_range=1.0, reduction="none"
    )
