"""JPEG compression: the real codec (PIL) at evaluation, BPDA through it for the attack."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from miga.defenses.base import Defense


def jpeg_roundtrip(image: Tensor, quality: int) -> Tensor:
    """Encode each image as 8-bit JPEG at `quality` with PIL and decode it (B,3,H,W in [0,1])."""
    out = []
    for single in image.detach().clamp(0.0, 1.0).mul(255).round().byte().cpu():
        buffer = io.BytesIO()
        Image.fromarray(single.permute(1, 2, 0).numpy()).save(buffer, "JPEG", quality=quality)
        decoded = np.array(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
        out.append(torch.from_numpy(decoded).permute(2, 0, 1))
    return torch.stack(out).to(device=image.device, dtype=image.dtype) / 255.0


class JPEG(Defense):
    """JPEG at `quality` (PIL's encoder: 4:2:0 chroma subsampling, standard tables).

    The attack sees it through BPDA: the forward value is the real codec's output, the gradient
    the identity's (the codec's rounding has zero gradient almost everywhere).
    """

    def __init__(self, quality: int = 75, adaptive: bool = True) -> None:
        super().__init__(adaptive)
        if not 1 <= quality <= 100:
            raise ValueError(f"jpeg.quality must be in 1..100, got {quality}")
        self.quality = int(quality)

    def forward(self, image: Tensor, index: Tensor | None = None, seed: int = 0) -> Tensor:
        return jpeg_roundtrip(image, self.quality)
