"""Per-image image-quality metrics (torchmetrics' functional forms, never batch-pooled).

torchmetrics' PSNR pools squared error over the whole batch by default; every function here
returns one value per image (docs/architecture.md §6), with a fixed data range of 1.0.
With `sizes` ((B, 2) heights and widths, from `loader=pad_center`) each image is scored on its
own unpadded centre only: the zero padding of a native-size batch is no part of any image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from miga.utils.images import crop_center

#: PSNR of identical images is infinite; rows store this cap so means stay finite.
PSNR_CAP_DB = 100.0


def per_unpadded_image(
    metric: Callable[[Tensor, Tensor], Tensor], pred: Tensor, target: Tensor, sizes: Tensor | None
) -> Tensor:
    """`metric` of each pair cut back to its own size (`sizes`), or of the batch when None."""
    if sizes is None:
        return metric(pred, target)
    pairs = zip(crop_center(pred, sizes), crop_center(target, sizes), strict=True)
    return torch.cat([metric(a, b) for a, b in pairs])


def psnr(pred: Tensor, target: Tensor, sizes: Tensor | None = None) -> Tensor:
    """PSNR in dB of each image pair (B,), data range 1, capped at `PSNR_CAP_DB`."""
    if sizes is not None:
        return per_unpadded_image(psnr, pred, target, sizes)
    values = peak_signal_noise_ratio(
        pred.float(), target.float(), data_range=1.0, reduction="none", dim=(1, 2, 3)
    )
    return values.clamp(max=PSNR_CAP_DB)


def ssim(pred: Tensor, target: Tensor, sizes: Tensor | None = None) -> Tensor:
    """SSIM (Gaussian window 11, σ 1.5) of each image pair (B,), data range 1."""
    if sizes is not None:
        return per_unpadded_image(ssim, pred, target, sizes)
    return structural_similarity_index_measure(
        pred.float(), target.float(), data_range=1.0, reduction="none"
    )
