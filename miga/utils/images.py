"""Image batches as modules pass them: centred padding, cutting back, the panels of a grid.

Below the data, the scorers, the module and the callbacks, which all need them: the datasets'
collate pads (`pad_center`), scorers and grids cut each image back to its own size
(`crop_center`), and the module hands the grid callback the panels it draws (`grid_panels`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: The panels of an image grid, left to right: x | x_n | D(x_n) | x_n+δ | D(x_n+δ) | δ.
PANELS = ("clean", "noisy", "denoised", "perturbed", "attacked", "delta")


def center_offsets(
    height: int, width: int, padded_height: int, padded_width: int
) -> tuple[int, int]:
    """(top, left) of an h×w image centred in an H×W canvas, as the authors' `F.pad` placed it."""
    if height > padded_height or width > padded_width:
        raise ValueError(
            f"a {height}x{width} image does not fit a {padded_height}x{padded_width} canvas"
        )
    return (padded_height - height) // 2, (padded_width - width) // 2


def pad_center(image: Tensor, height: int, width: int) -> Tensor:
    """`image` (C, h, w) zero-padded to (C, height, width), centred."""
    h, w = image.shape[-2:]
    top, left = center_offsets(h, w, height, width)
    return F.pad(image, (left, width - w - left, top, height - h - top), value=0.0)


def crop_center(images: Tensor, sizes: Tensor | None) -> list[Tensor]:
    """Each image of a padded batch (B, C, H, W) cut back to its own size, as (1, C, h, w).

    `sizes` (B, 2) holds each image's (h, w) before padding; None: the batch was not padded and
    every image is returned whole."""
    if sizes is None:
        return [image.unsqueeze(0) for image in images]
    height, width = images.shape[-2:]
    crops = []
    for image, (h, w) in zip(images, sizes.tolist(), strict=True):
        top, left = center_offsets(int(h), int(w), height, width)
        crops.append(image[:, top : top + h, left : left + w].unsqueeze(0))
    return crops


def grid_panels(
    images: dict[str, Tensor], count: int, sizes: Tensor | None = None
) -> dict[str, Tensor | list[Tensor]]:
    """The first `count` samples' `PANELS`, on the CPU (what a prediction carries to the grid
    callback): a batch tensor, or per-image tensors cut back to `sizes` (B, 2) when the batch
    was padded (`loader=pad_center`)."""
    if sizes is not None:
        return {
            name: [crop[0].cpu() for crop in crop_center(images[name][:count], sizes[:count])]
            for name in PANELS
        }
    return {name: torch.as_tensor(images[name][:count]).cpu() for name in PANELS}
