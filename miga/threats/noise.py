"""Noise models: how the clean image x becomes the denoiser's input x_n.

Every noise model is called as `noise(image, index, seed, stream="noise", stored=None)`, where
`stored` is the batch's pre-noised image when its dataset read one from disk
(`dataset.noisy_root`), else None. `GaussianNoise` draws x_n and refuses a stored one (it would
be silently ignored); `FromDisk` returns the stored one and draws nothing.
"""

from __future__ import annotations

import torch
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

    def forward(
        self,
        image: Tensor,
        index: Tensor,
        seed: int,
        stream: str = "noise",
        stored: Tensor | None = None,
    ) -> Tensor:
        """One draw per sample from the stream (seed, `stream`, index): "noise" is the cell's
        x_n; other streams are further draws (the sensor threat model's, miga.threats.sensor)."""
        if stored is not None:
            raise ValueError(
                "the dataset carries pre-noised images (dataset.noisy_root is set) but "
                "noise=gaussian would add fresh noise to the clean ones: choose noise=from_disk "
                "to use the files, or set dataset.noisy_root=null"
            )
        noise = per_sample_randn(image.shape[1:], index, seed, stream, image)
        noisy = image + noise * (self.sigma / 255.0)
        return noisy.clamp(0.0, 1.0) if self.clip else noisy


class FromDisk(nn.Module):
    """x_n is the pre-noised image the dataset read from disk beside the clean one.

    The MIGA authors' released scripts read noisy inputs as 8-bit PNGs made beforehand (noise
    added to the full-size image, rounded to 8 bits, then resized/cropped like the clean image),
    not float noise drawn after the crop. With `noise=from_disk` and `dataset.noisy_root=<folder>`
    the cell attacks exactly those files (`python -m miga.data.make_noisy` writes such a folder).
    Nothing is drawn, so the sensor threat model (fresh draws) cannot use it.

    Args:
        sigma: the σ (8-bit units) the files were made with, for the record only (results and
            reports name it); null when unknown (real noise).
    """

    def __init__(self, sigma: float | None = None) -> None:
        super().__init__()
        self.sigma = sigma

    def forward(
        self,
        image: Tensor,
        index: Tensor,
        seed: int,
        stream: str = "noise",
        stored: Tensor | None = None,
    ) -> Tensor:
        """The batch's stored noisy image (same shape and layout as `image`)."""
        if stream != "noise":
            raise ValueError(
                f"noise=from_disk holds one stored x_n per image and cannot draw fresh noise "
                f"(stream '{stream}'): the sensor threat model needs a drawing noise model "
                f"such as noise=gaussian"
            )
        if stored is None:
            raise ValueError(
                "noise=from_disk needs pre-noised images from the dataset: set "
                "dataset.noisy_root to the folder of noisy files (it mirrors dataset.root; "
                "python -m miga.data.make_noisy writes one)"
            )
        if stored.shape != image.shape:
            raise ValueError(
                f"stored noisy batch {tuple(stored.shape)} does not match the clean batch "
                f"{tuple(image.shape)}"
            )
        return stored.to(dtype=image.dtype).contiguous(memory_format=_layout(image))


def _layout(image: Tensor) -> torch.memory_format:
    """The memory format `image` is in (channels_last or contiguous), to keep x_n alike."""
    if image.dim() == 4 and image.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format
