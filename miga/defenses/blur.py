"""Gaussian blur: differentiable, so an adaptive attack goes through the transform itself."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from miga.defenses.base import Defense


class GaussianBlur(Defense):
    """Separable Gaussian blur of standard deviation `sigma` px, reflect-padded (k odd)."""

    def __init__(self, kernel_size: int = 5, sigma: float = 1.0, adaptive: bool = True) -> None:
        super().__init__(adaptive)
        if kernel_size < 1 or kernel_size % 2 == 0 or not sigma > 0:
            raise ValueError(f"blur needs an odd kernel_size and sigma > 0, got {kernel_size}")
        offsets = torch.arange(kernel_size, dtype=torch.float32) - kernel_size // 2
        weights = torch.exp(-(offsets**2) / (2 * sigma**2))
        self.register_buffer("weights", weights / weights.sum(), persistent=False)
        self.kernel_size = kernel_size
        self.sigma = sigma

    def forward(self, image: Tensor, index: Tensor | None = None, seed: int = 0) -> Tensor:
        channels, pad = image.shape[1], self.kernel_size // 2
        weights = self.weights.to(image.dtype)
        row = weights.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
        column = weights.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
        image = F.conv2d(F.pad(image, (pad, pad, 0, 0), mode="reflect"), row, groups=channels)
        return F.conv2d(F.pad(image, (0, 0, pad, pad), mode="reflect"), column, groups=channels)

    def surrogate(self, image: Tensor) -> Tensor:
        return self.forward(image)
