"""Batching images of different sizes: centred zero padding to the largest image of the batch.

The MIGA authors' unknown-task script (`Unknown-Task/Attack.py` of
Dilemma-CMZ/Mutual-Information-Guided-Denoising-Attack) attacks images at their native size: a
batch is zero-padded, each image centred, to the largest height and width in it
(left = (W − w) // 2, top = (H − h) // 2; the odd pixel goes right and bottom). `PadCenter`
batches the same way and keeps each item's own size (`size`, (B, 2) as h, w) so that scoring
can look at the unpadded region only (`miga.utils.images.crop_center`; docs/protocol.md,
"Inputs as the authors had them").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import default_collate

from miga.utils.images import pad_center

#: Batch keys that hold images and are padded (whichever of them an item carries).
IMAGE_KEYS = ("image", "noisy", "reference")


class PadCenter:
    """Collate for `loader.collate_fn`: images of any size in one batch, centred zero padding.

    Every image key an item carries (`image`, `noisy`, `reference`) is padded to the batch's
    largest height and width; an item's image keys must share one size (the datasets resize a
    reference to its image). The batch gains `size` (B, 2): each item's (h, w) before padding.
    Other keys (`index`, `label`, …) are batched as PyTorch's default collate does.
    """

    def __init__(self, keys: Sequence[str] = IMAGE_KEYS) -> None:
        self.keys = tuple(keys)

    def __call__(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if not items:
            raise ValueError("PadCenter: empty batch")
        keys = [key for key in self.keys if key in items[0]]
        if not keys:
            raise KeyError(f"PadCenter: items carry none of the image keys {self.keys}")
        sizes = []
        for item in items:
            shapes = {key: tuple(item[key].shape[-2:]) for key in keys}
            if len(set(shapes.values())) != 1:
                raise ValueError(
                    f"PadCenter: item {item.get('index')} has image keys of different sizes "
                    f"{shapes}; each item's images must share one size to be padded alike"
                )
            sizes.append(shapes[keys[0]])
        height = max(h for h, _ in sizes)
        width = max(w for _, w in sizes)
        batch = default_collate(
            [{k: v for k, v in item.items() if k not in keys} for item in items]
        )
        for key in keys:
            batch[key] = torch.stack([pad_center(item[key], height, width) for item in items])
        batch["size"] = torch.tensor(sizes, dtype=torch.long)
        return batch
