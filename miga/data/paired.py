"""(image, semantically altered reference) pairs: the unknown-task datasets.

See docs/architecture.md §3.

One on-disk format for the four sets (text tampering, style transfer, object replacement,
image editing), in either of two layouts:

- one folder: `<root>/<name>.<ext>` (the original) + `<root>/<name>_target.<ext>` (the reference);
- two folders: `<root>/origin/<name>.<ext>` + `<root>/target/<name>.<ext>`, matched by file stem.

File endings may differ within a pair (`3.jpg` + `3_target.png`). Pairs are ordered by name
with digit runs compared as numbers (`2` before `10`), so indices are stable. What the
reference means (the task) is recorded by the datamodule config (`task: ocr | style | …`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image
from torch import Tensor

from miga.data.demo_photos import to_tensor
from miga.data.images import (
    AuditedDataset,
    BadImageError,
    FileAudit,
    OnBadImage,
    OnNonRGB,
    is_image_file,
    natural_key,
    read_rgb,
    require_dir,
    resize_crop_or_native,
)
from miga.data.noisy_files import NoisyTwins

log = logging.getLogger(__name__)


class PairedImages(AuditedDataset):
    """Original/reference pairs, both resized (shorter side `resize`) and center-cropped to `size`.

    Items are dicts {"image": (3,size,size), "reference": (3,size,size), "index": int}. A pair
    missing its target (or a target without its original), an unreadable image or an unwanted
    image mode raises `BadImageError` or is skipped and counted (`skipped`, `skipped_files`), as
    `on_bad_image` / `on_non_rgb` say.

    Args:
        root: the folder holding the pairs (or `origin/` and `target/`).
        size: side of the square crop; resize: shorter side before cropping (default `size`).
            `size=None`: native size (the authors' unknown-task protocol; batch with
            `loader=pad_center`); a reference of another size is resized (bilinear) to its
            image's size, as the authors' script does.
        limit: keep the first `limit` usable pairs (None: all).
        target_suffix: stem suffix of references in the one-folder layout.
        origin_dir, target_dir: folder names of the two-folder layout.
        verify: decode every selected image once at construction.
        noisy_root: a folder mirroring `root` with pre-noised originals (`miga.data.noisy_files`:
            `<noisy_root>/<name>.png` or `<noisy_root>/origin/<name>.png`); items then carry
            "noisy", resized and cropped like "image" (use `noise=from_disk`).
    """

    def __init__(
        self,
        root: str | Path,
        size: int | None = 256,
        resize: int | None = None,
        limit: int | None = None,
        target_suffix: str = "_target",
        origin_dir: str = "origin",
        target_dir: str = "target",
        interpolation: str = "bilinear",
        on_bad_image: OnBadImage = "raise",
        on_non_rgb: OnNonRGB = "convert",
        verify: bool = True,
        noisy_root: str | Path | None = None,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"dataset limit must be >= 1 or null, got {limit}")
        self.root = require_dir(
            Path(root), "paired dataset root", "set dataset.root to the folder of pairs"
        )
        self.size, self.resize, self.interpolation = size, resize or size, interpolation
        self.audit = FileAudit(on_bad_image, on_non_rgb, decode=verify)
        if (self.root / origin_dir).is_dir() or (self.root / target_dir).is_dir():
            origins = self._by_stem(require_dir(self.root / origin_dir, "origin folder", "pairs"))
            targets = self._by_stem(require_dir(self.root / target_dir, "target folder", "pairs"))
        else:
            files = self._by_stem(self.root)
            targets = {
                stem.removesuffix(target_suffix): path
                for stem, path in files.items()
                if stem.endswith(target_suffix) and stem != target_suffix
            }
            origins = {s: p for s, p in files.items() if not s.endswith(target_suffix)}
        for stem in sorted(set(targets) - set(origins), key=natural_key):
            self.audit.problem(targets[stem], "reference without its original image")
        self.pairs: list[tuple[Path, Path]] = []
        for stem in sorted(origins, key=natural_key):
            if limit is not None and len(self.pairs) >= limit:
                break
            if stem not in targets:
                self.audit.problem(origins[stem], "original image without its reference (target)")
                continue
            if self.audit.check(origins[stem]) and self.audit.check(targets[stem]):
                self.pairs.append((origins[stem], targets[stem]))
        if not self.pairs:
            raise BadImageError(
                f"{self.root}: no usable (image, reference) pairs; expected <name>.png + "
                f"<name>{target_suffix}.png, or {origin_dir}/ + {target_dir}/ with matching names"
            )
        self.noisy: list[Path] | None = None
        if noisy_root is not None:
            twins = NoisyTwins(noisy_root, self.root)
            kept = [(pair, twins.check(pair[0], self.audit)) for pair in self.pairs]
            self.pairs = [pair for pair, twin in kept if twin is not None]
            self.noisy = [twin for _, twin in kept if twin is not None]
            if not self.pairs:
                raise BadImageError(f"{twins.root}: no usable pre-noised image for {self.root}")
        self.audit.summarise(str(self.root))

    def _by_stem(self, folder: Path) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for path in sorted(folder.iterdir(), key=lambda p: p.name):
            if not is_image_file(path):
                continue
            if path.stem in found:
                raise BadImageError(
                    f"{folder}: two images share the name '{path.stem}' ({found[path.stem].name}, "
                    f"{path.name}); pairs are matched by name, rename or remove one"
                )
            found[path.stem] = path
        return found

    @property
    def names(self) -> list[str]:
        return [origin.stem for origin, _ in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def _load(self, path: Path, native_size: tuple[int, int] | None = None) -> Tensor:
        image = read_rgb(path)
        if self.size is None and native_size is not None and image.size != native_size:
            image = image.resize(native_size, Image.BILINEAR)
        image = resize_crop_or_native(image, self.resize, self.size, self.interpolation)
        return to_tensor(image)

    def __getitem__(self, index: int) -> dict[str, Tensor | int]:
        origin, target = self.pairs[index]
        with Image.open(origin) as header:
            native = header.size
        item: dict[str, Tensor | int] = {
            "image": self._load(origin),
            "reference": self._load(target, native),
            "index": index,
        }
        if self.noisy is not None:
            item["noisy"] = self._load(self.noisy[index])
        return item
