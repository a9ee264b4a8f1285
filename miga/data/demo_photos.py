"""The embedded demo dataset: real photographs shipped inside installed packages.

Nothing is downloaded: scikit-image's wheel carries the photos. `photos.json` records, per
image, the source file, the square crop, the ImageNet label and the licence.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from miga.utils.config import package_file

CATALOGUE = Path(__file__).parent / "demo" / "photos.json"


def square_crop(image: Image.Image, position: str) -> Image.Image:
    """The largest square at `position` (center | left | right | top | bottom)."""
    width, height = image.size
    side = min(width, height)
    offsets = {
        "center": ((width - side) // 2, (height - side) // 2),
        "left": (0, (height - side) // 2),
        "right": (width - side, (height - side) // 2),
        "top": ((width - side) // 2, 0),
        "bottom": ((width - side) // 2, height - side),
    }
    if position not in offsets:
        raise ValueError(f"crop '{position}' is not one of {sorted(offsets)}")
    left, top = offsets[position]
    return image.crop((left, top, left + side, top + side))


def to_tensor(image: Image.Image) -> Tensor:
    """PIL RGB image → float CHW tensor in [0,1]."""
    array = np.array(image.convert("RGB"), dtype=np.uint8, copy=True)
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)


class DemoPhotos(Dataset):
    """Square crops of the catalogued photos at `size`×`size`, with ImageNet labels.

    Items are dicts {"image": (3,S,S) float, "label": int, "index": int}; `index` is the
    item's position in the catalogue, the row key of results and the seed of its noise.
    """

    def __init__(self, size: int = 128, limit: int | None = None) -> None:
        catalogue = json.loads(CATALOGUE.read_text())["photos"]
        self.entries = catalogue[:limit] if limit else catalogue
        self.size = size
        self.class_names = {e["label"]: e["class_name"] for e in self.entries}
        self._cache: dict[int, Tensor] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict[str, Tensor | int]:
        if index not in self._cache:
            entry = self.entries[index]
            photo = Image.open(package_file(entry["package"], entry["file"])).convert("RGB")
            crop = square_crop(photo, entry["crop"]).resize(
                (self.size, self.size), Image.Resampling.BICUBIC
            )
            self._cache[index] = to_tensor(crop)
        return {"image": self._cache[index], "label": self.entries[index]["label"], "index": index}
