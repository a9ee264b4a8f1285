"""dataset=imagenet_samples: foolbox's 20 ImageNet-val photos, read from the installed package.

foolbox is installed without its dependencies (`make install`), so it cannot be imported: the
dataset must find its files without running `foolbox/__init__.py`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from miga.data.imagenet_samples import ImageNetSamples, sample_files, samples_folder
from tests.conftest import compose_config

if importlib.util.find_spec("foolbox") is None:
    pytest.skip(
        "the ImageNet samples ship in foolbox: pip install --no-deps foolbox==3.3.4",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def samples() -> ImageNetSamples:
    return instantiate(compose_config(["dataset=imagenet_samples"]).dataset)


def test_twenty_crops_with_the_labels_their_file_names_carry(samples: ImageNetSamples) -> None:
    assert len(samples) == 20
    files = sorted(samples.folder.glob("imagenet_*.jpg"))
    assert len(files) == 20
    # parsed here the way foolbox's own `samples()` parses them: the last `_` field of the stem
    expected = {int(p.stem.split("_")[1]): int(p.stem.split("_")[-1]) for p in files}
    for index in range(20):
        item = samples[index]
        assert item["index"] == index and item["label"] == expected[index]
        assert item["image"].shape == (3, 224, 224) and item["image"].dtype == torch.float32
        assert 0 <= item["image"].min() and item["image"].max() <= 1


def test_one_photo_by_hand(samples: ImageNetSamples) -> None:
    """imagenet_00_243.jpg, 512×512: ImageNet class 243 is 'bull mastiff'; shorter side to 256
    then the central 224 square is pixels 16…239 of the 256 px image."""
    item = samples[0]
    assert item["label"] == 243 and samples.class_names[243] == "bull mastiff"
    photo = Image.open(samples.folder / "imagenet_00_243.jpg").convert("RGB")
    assert photo.size == (512, 512)
    crop = photo.resize((256, 256), Image.Resampling.BILINEAR).crop((16, 16, 240, 240))
    expected = torch.from_numpy(np.asarray(crop, dtype=np.float32) / 255).permute(2, 0, 1)
    torch.testing.assert_close(item["image"], expected, atol=1 / 255, rtol=0)


def test_deterministic_and_limit_keeps_the_first(samples: ImageNetSamples) -> None:
    again = ImageNetSamples(limit=3)
    assert len(again) == 3
    for i in range(3):
        assert torch.equal(again[i]["image"], samples[i]["image"])
        assert again[i]["label"] == samples[i]["label"]


def test_the_demo_classifier_reads_the_labels_in_its_own_index_space(
    samples: ImageNetSamples, demo_models
) -> None:
    """The labels are ImageNet-1k indices, the ones EfficientNet-Lite0 predicts: with a 1-in-1000
    chance level, half right or more is only possible if the two index spaces agree (an
    off-by-one or a sorted-WNID mix-up gives ~0). Measured: 14 of 20 (README)."""
    _, classifier = demo_models
    images = torch.stack([samples[i]["image"] for i in range(len(samples))])
    labels = torch.tensor([samples[i]["label"] for i in range(len(samples))])
    with torch.no_grad():
        right = (classifier(images).argmax(1) == labels).sum().item()
    assert right >= 10, right


def test_parsing_orders_by_sample_index_and_ignores_other_files(tmp_path: Path) -> None:
    for name in ("imagenet_10_5.jpg", "imagenet_02_999.jpg", "cifar10_00_3.png", "imagenet.txt"):
        (tmp_path / name).write_bytes(b"")
    assert sample_files(tmp_path) == [
        (tmp_path / "imagenet_02_999.jpg", 999),
        (tmp_path / "imagenet_10_5.jpg", 5),
    ]


def test_bad_folders_and_a_missing_package_say_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no imagenet_<i>_<label>\.jpg files"):
        sample_files(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps foolbox==3\.3\.4"):
        samples_folder("miga_no_such_package")
    with pytest.raises(ValueError, match="limit"):
        ImageNetSamples(limit=0)
