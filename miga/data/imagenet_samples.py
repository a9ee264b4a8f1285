"""Twenty real ImageNet validation photos that install offline, from foolbox's wheel.

foolbox 3.3.4 (MIT) ships 20 ILSVRC-2012 validation JPEGs as `foolbox/data/imagenet_<i>_<label>.jpg`
(`<i>` 00–19, `<label>` the 1000-class ImageNet index; 512 px, one 1024×683). They are read
from the installed package and never copied into this repository. foolbox is installed
*without its dependencies* (`pip install --no-deps foolbox==3.3.4`; `make install` does): only
its data files are read, so the package is located with `importlib.util.find_spec`, which does
not run `foolbox/__init__.py` (that would import eagerpy, GitPython, … which are not installed;
`importlib.resources.files("foolbox")` imports the package and so cannot be used here).

Why: a 1000-class victim (the demo's EfficientNet-Lite0) needs real ImageNet photos at the
size it was trained on, and ImageNet itself cannot be downloaded at run time. Each photo goes
through the same Resize(256) → CenterCrop(224) as `dataset=imagenet`, so a cell on these 20
images is a small, offline stand-in for an ImageNet-val cell.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from torch import Tensor
from torch.utils.data import Dataset

from miga.data.demo_photos import to_tensor
from miga.data.imagenet import _imagenet_info
from miga.data.images import read_rgb, resize_crop_or_native

#: `imagenet_<i>_<label>.jpg`: sample index, then the ImageNet-1k class index.
SAMPLE_NAME = re.compile(r"imagenet_(\d{2})_(\d{1,3})\.jpg")  # 1–3 digits: 0–999
PACKAGE = "foolbox"
INSTALL = "pip install --no-deps foolbox==3.3.4"


def samples_folder(package: str = PACKAGE) -> Path:
    """The installed package's `data/` folder, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"dataset=imagenet_samples reads the ImageNet photos shipped in the Python package "
            f"'{package}', which is not installed: {INSTALL} (only its data files are read, so "
            f"its dependencies are not needed; `make install` does this)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{folder}: the installed '{package}' has no data/ folder; expected foolbox 3.3.4 "
            f"({INSTALL})"
        )
    return folder


def sample_files(folder: Path) -> list[tuple[Path, int]]:
    """(file, ImageNet label) of every `imagenet_<i>_<label>.jpg` in `folder`, by sample index."""
    found = []
    for path in folder.iterdir():
        match = SAMPLE_NAME.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path, int(match.group(2))))
    if not found:
        raise FileNotFoundError(
            f"{folder}: no imagenet_<i>_<label>.jpg files; expected the 20 of foolbox 3.3.4 "
            f"({INSTALL})"
        )
    found.sort()
    return [(path, label) for _, path, label in found]


class ImageNetSamples(Dataset):
    """foolbox's 20 ImageNet-val photos, resized and centre-cropped like `dataset=imagenet`.

    Items are dicts {"image": (3,size,size) float [0,1], "label": int (ImageNet-1k index),
    "index": int}, in the order of the files' sample index `<i>`; `index` is the row key of the
    results and the seed of the item's noise.

    Args:
        size: side of the centre crop (224, as `dataset=imagenet`); `None`: native size, no
            resize or crop (batch with `loader=pad_center`).
        resize: shorter side before the crop (256).
        interpolation: resize filter (`bilinear`, as `dataset=imagenet`).
        limit: the first `limit` samples (None: all 20).
        package: the installed package that ships the files.
    """

    def __init__(
        self,
        size: int | None = 224,
        resize: int | None = 256,
        interpolation: str = "bilinear",
        limit: int | None = None,
        package: str = PACKAGE,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"dataset limit must be >= 1 or null, got {limit}")
        self.folder = samples_folder(package)
        self.samples = sample_files(self.folder)[:limit]
        self.size, self.resize, self.interpolation = size, resize, interpolation
        info = _imagenet_info()
        self.class_names = {
            label: info.index_to_description(label).split(",")[0].strip()
            for _, label in self.samples
        }
        self._cache: dict[int, Tensor] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Tensor | int]:
        path, label = self.samples[index]
        if index not in self._cache:
            image = resize_crop_or_native(
                read_rgb(path), self.resize, self.size, self.interpolation
            )
            self._cache[index] = to_tensor(image)
        return {"image": self._cache[index], "label": label, "index": index}
