"""Training material for adversarial fine-tuning: photos the demo never evaluates on.

The demo scores 14 crops of five scikit-image photos (`miga/data/demo/photos.json`: chelsea,
coffee, motorcycle_left, motorcycle_right, rocket); the ImageNet samples are ImageNet
validation photos. A defense trained on either would be scored on its own training images, so
`miga.robust` trains on the *other* colour photos scikit-image ships (listed with their licences
in `ROBUST_TRAINING_PHOTOS`) and `training_photos` refuses any overlap with the catalogue.

Determinism and resume: every crop, its noise and its sample index are pure functions of
(seed, sample id), and batch `b` of the run holds sample ids `b·B … b·B+B−1`. `StepBatches`
hands Lightning the batches of one epoch (`epoch_steps` steps) from the epoch number Lightning
gives it (`set_epoch`), so a run resumed from an epoch-end checkpoint sees exactly the batches
an uninterrupted run would have seen.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from miga.data.demo_photos import CATALOGUE, to_tensor
from miga.utils.config import package_file
from miga.utils.seeding import per_sample_randn, sample_seed
from miga.zoo.photos import photos_for_crop, random_crop

#: (package, file, licence as scikit-image's `skimage.data` docstrings state it).
ROBUST_TRAINING_PHOTOS: tuple[tuple[str, str, str], ...] = (
    ("skimage", "data/astronaut.png", "public domain (NASA, Eileen Collins)"),
    ("skimage", "data/hubble_deep_field.jpg", "public domain (NASA)"),
    ("skimage", "data/ihc.png", "no known copyright restrictions (immunohistochemistry)"),
    ("skimage", "data/retina.jpg", "CC0 1.0 (Häggström, Wikimedia Commons)"),
)


def evaluation_sources() -> set[tuple[str, str]]:
    """(package, file) of every photo the demo dataset evaluates on."""
    catalogue = json.loads(Path(CATALOGUE).read_text())["photos"]
    return {(entry["package"], entry["file"]) for entry in catalogue}


def training_photos(
    photos: Sequence[tuple[str, str, str]] = ROBUST_TRAINING_PHOTOS, max_side: int = 512
) -> list[Tensor]:
    """The training photos as (3, H, W) tensors, each at most `max_side`; a photo the demo
    evaluates on is an error (the defense would be scored on its own training images)."""
    overlap = sorted({(p, f) for p, f, _ in photos} & evaluation_sources())
    if overlap:
        raise ValueError(
            f"robust training photos {overlap} are demo evaluation photos "
            f"({CATALOGUE}): train on photos the demo does not score"
        )
    tensors = []
    for package, file, _ in photos:
        image = Image.open(package_file(package, file)).convert("RGB")
        image.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
        tensors.append(to_tensor(image))
    return tensors


class NoisyCropSamples(Dataset):
    """Sample id → {"image": clean crop, "noisy": crop + N(0, σ/255), "index": id}, each a pure
    function of (seed, id): the random crop and flip from stream "robust_crop", the noise from
    the per-sample stream "noise" the attack harness uses."""

    def __init__(self, photos: list[Tensor], crop: int, sigma: float, seed: int = 0) -> None:
        self.photos = photos_for_crop(photos, crop)
        self.crop = crop
        self.sigma = sigma
        self.seed = seed

    def __len__(self) -> int:
        return 2**62  # ids are unbounded; StepSamples picks them

    def __getitem__(self, sample: int) -> dict[str, Tensor]:
        generator = torch.Generator().manual_seed(sample_seed(self.seed, sample, "robust_crop"))
        clean = random_crop(self.photos, self.crop, generator)
        index = torch.tensor([sample])
        noise = per_sample_randn(clean.shape, index, self.seed, "noise", clean)[0]
        return {
            "image": clean.contiguous(),
            "noisy": (clean + noise * self.sigma / 255.0).clamp(0, 1),
            "index": index[0],
        }


class StepSamples(Sampler[int]):
    """Sample ids for a `DataLoader(batch_size=B)`: epoch e yields the ids of steps
    e·K … e·K+K−1 (K = `epoch_steps`), step b's batch holding ids b·B … b·B+B−1, and never
    more than `steps` batches in all. Lightning calls `set_epoch` on a loader's sampler before
    every epoch, the first one after a resume included."""

    def __init__(self, batch_size: int, epoch_steps: int, steps: int) -> None:
        if batch_size < 1 or epoch_steps < 1 or steps < 1:
            raise ValueError(
                f"batch_size, epoch_steps and steps must be >= 1, got {batch_size}, "
                f"{epoch_steps}, {steps}"
            )
        self.batch_size = batch_size
        self.epoch_steps = epoch_steps
        self.steps = steps
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _ids(self) -> range:
        first = self.epoch * self.epoch_steps
        last = min(first + self.epoch_steps, self.steps)
        return range(first * self.batch_size, max(first, last) * self.batch_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids())

    def __len__(self) -> int:
        return len(self._ids())
