"""Random resize + pad (Xie et al. 2018), sized to keep the image's own shape."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from miga.defenses.base import Defense
from miga.utils.seeding import per_sample_rand


def _resize_and_pad(image: Tensor, scale: float, left: float, top: float, mode: str) -> Tensor:
    """Resize (C,H,W) by `scale` ≤ 1, then pad back to H×W with the free margin split at
    fractions `left`/`top` ∈ [0,1]."""
    height, width = image.shape[-2:]
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    small = F.interpolate(
        image[None], size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True
    )
    pad_h, pad_w = height - new_h, width - new_w
    top_px, left_px = round(pad_h * top), round(pad_w * left)
    padding = (left_px, pad_w - left_px, top_px, pad_h - top_px)
    return F.pad(small, padding, mode=mode)[0]


class ResizePad(Defense):
    """Resize by a random factor in [`min_scale`, 1], pad back to the input size at a random offset.

    The draws come per sample from (seed, dataset index) at evaluation (positions 0..B−1 when no
    index is given), so results do not depend on batch composition. An adaptive attack
    differentiates through the deterministic centre draw (scale (1 + min_scale)/2, centred
    padding): the attacker does not know the defender's per-sample randomness.
    The output is rescaled and shifted against x: its cost in PSNR is part of what it measures.
    """

    def __init__(
        self, min_scale: float = 0.9, pad_mode: str = "replicate", adaptive: bool = True
    ) -> None:
        super().__init__(adaptive)
        if not 0 < min_scale <= 1:
            raise ValueError(f"resize_pad.min_scale must be in (0, 1], got {min_scale}")
        self.min_scale = float(min_scale)
        self.pad_mode = pad_mode

    def forward(self, image: Tensor, index: Tensor | None = None, seed: int = 0) -> Tensor:
        if index is None:
            index = torch.arange(image.shape[0])
        draws = per_sample_rand((3,), index, seed, "resize_pad", image).tolist()
        return torch.stack(
            [
                _resize_and_pad(
                    single, self.min_scale + (1 - self.min_scale) * u, left, top, self.pad_mode
                )
                for single, (u, left, top) in zip(image, draws, strict=True)
            ]
        )

    def surrogate(self, image: Tensor) -> Tensor:
        scale = (1 + self.min_scale) / 2
        return torch.stack(
            [_resize_and_pad(single, scale, 0.5, 0.5, self.pad_mode) for single in image]
        )
