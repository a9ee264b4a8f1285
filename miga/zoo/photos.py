"""Training material for the project's own small models: every RGB photo shipped in wheels."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import IterableDataset

from miga.data.demo_photos import CATALOGUE, to_tensor
from miga.utils.config import package_file
from miga.utils.seeding import sample_seed

#: Extra photos (besides the demo catalogue's sources) used only to train denoisers.
EXTRA_TRAINING_PHOTOS = (
    ("skimage", "data/astronaut.png"),
    ("skimage", "data/hubble_deep_field.jpg"),
    ("skimage", "data/ihc.png"),
    ("skimage", "data/retina.jpg"),
)


def random_crop(photos: list[Tensor], crop: int, generator: torch.Generator) -> Tensor:
    """A `crop`×`crop` window of a random photo at a random place, flipped left-right with
    probability 1/2, drawn from `generator` in this order (photo, top, left, flip): the order
    the committed demo weights were trained with, so it must not change."""
    photo = photos[int(torch.randint(len(photos), (1,), generator=generator))]
    h, w = photo.shape[-2:]
    top = int(torch.randint(h - crop + 1, (1,), generator=generator))
    left = int(torch.randint(w - crop + 1, (1,), generator=generator))
    clean = photo[:, top : top + crop, left : left + crop]
    if torch.rand(1, generator=generator) < 0.5:
        clean = clean.flip(-1)
    return clean


def photos_for_crop(photos: list[Tensor], crop: int) -> list[Tensor]:
    """The photos with room for a `crop`×`crop` window (an error when none has)."""
    usable = [p for p in photos if min(p.shape[-2:]) >= crop]
    if not usable:
        raise ValueError(f"no training photo is at least {crop} px on each side")
    return usable


def training_photos(max_side: int = 512) -> list[Tensor]:
    """Distinct source photos of the demo catalogue plus a few more, each at most `max_side`."""
    catalogue = json.loads(Path(CATALOGUE).read_text())["photos"]
    sources = dict.fromkeys(
        [(e["package"], e["file"]) for e in catalogue] + list(EXTRA_TRAINING_PHOTOS)
    )
    photos = []
    for package, file in sources:
        image = Image.open(package_file(package, file)).convert("RGB")
        image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
        photos.append(to_tensor(image))
    return photos


class NoisyCrops(IterableDataset):
    """Endless (noisy, clean) random crops with Gaussian noise of σ/255, reproducible by seed.

    `sigma` may be a (low, high) range for blind denoisers.
    """

    def __init__(
        self, photos: list[Tensor], crop: int, sigma: float | tuple[float, float], seed: int = 0
    ) -> None:
        self.photos = photos_for_crop(photos, crop)
        self.crop = crop
        self.sigma = sigma
        self.seed = seed

    def __iter__(self):  # noqa: ANN204
        generator = torch.Generator().manual_seed(sample_seed(self.seed, 0, "crops"))
        while True:
            clean = random_crop(self.photos, self.crop, generator)
            low, high = self.sigma if isinstance(self.sigma, tuple | list) else (self.sigma,) * 2
            sigma = low + (high - low) * float(torch.rand(1, generator=generator))
            noise = torch.randn(clean.shape, generator=generator) * sigma / 255.0
            yield (clean + noise).clamp(0, 1), clean
