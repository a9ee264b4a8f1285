"""Classical (weight-free) denoisers: a reference point no training can explain away.

A Gaussian low-pass filter is the simplest denoiser there is; attacking it shows what MIGA owes
to the deep denoiser's learned behaviour and what any smoothing operator would allow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GaussianFilter(nn.Module):
    """Depthwise Gaussian blur with standard deviation `sigma_px` pixels (reflect-padded)."""

    def __init__(self, sigma_px: float = 1.0, channels: int = 3) -> None:
        super().__init__()
        if sigma_px <= 0:
            raise ValueError(f"GaussianFilter sigma_px must be > 0, got {sigma_px}")
        radius = max(1, int(round(3 * sigma_px)))
        offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel_1d = torch.exp(-(offsets**2) / (2 * sigma_px**2))
        kernel_1d = kernel_1d / kernel_1d.sum()
        kernel = torch.outer(kernel_1d, kernel_1d).expand(channels, 1, -1, -1).contiguous()
        self.register_buffer("kernel", kernel, persistent=False)
        self.radius = radius
        self.channels = channels

    def forward(self, x: Tensor) -> Tensor:
        mode = "reflect" if min(x.shape[-2:]) > self.radius else "replicate"
        padded = F.pad(x, (self.radius,) * 4, mode=mode)
        return F.conv2d(padded, self.kernel.to(x.dtype), groups=self.channels)
