"""Noise models: how the clean image x becomes the denoiser's input x_n."""

from __future__ import annotations

from torch import Tensor, nn

from miga.utils.seeding import per_sample_randn


class GaussianNoise(nn.Module):
    """x_n = x + N(0, (σ/255)²), per-sample reproducible, optionally clipped to [0,1].

    Args:
        sigma: standard deviation in 8-bit units (the literature's σ = 15, 25, 50).
        clip: clip x_n to [0,1] (a real image); the official Restormer test does not clip.
    """

    def __init__(self, sigma: float = 25.0, clip: bool = True) -> None:
        super().__init__()
        if sigma < 0:
            raise ValueError(f"noise.sigma must be >= 0, got {sigma}")
        self.sigma = sigma
        self.clip = clip

    def forward(self, image: Tensor, index: Tensor, seed: int, stream: str = "noise") -> Tensor:
        """One draw per sample from the stream (seed, `stream`, index): "noise" is the cell's
        x_n; other streams are further draws (the sensor threat model's, miga.data.sensor)."""
        noise = per_sample_randn(image.shape[1:], index, seed, stream, image)
        noisy = image + noise * (self.sigma / 255.0)
        return noisy.clamp(0.0, 1.0) if self.clip else noisy
