"""k×k median filter (feature squeezing, Xu et al. 2018), BPDA for the attack."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from miga.defenses.base import Defense


class MedianFilter(Defense):
    """Per-channel median over each k×k window, reflect-padded so the size is kept (k odd)."""

    def __init__(self, kernel_size: int = 3, adaptive: bool = True) -> None:
        super().__init__(adaptive)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"median.kernel_size must be odd and >= 1, got {kernel_size}")
        self.kernel_size = int(kernel_size)

    def forward(self, image: Tensor, index: Tensor | None = None, seed: int = 0) -> Tensor:
        k, pad = self.kernel_size, self.kernel_size // 2
        padded = F.pad(image, (pad, pad, pad, pad), mode="reflect") if pad else image
        windows = padded.unfold(2, k, 1).unfold(3, k, 1)  # (B, C, H, W, k, k)
        return windows.flatten(-2).median(dim=-1).values
