"""ImageNet (ILSVRC-2012) from its standard on-disk layouts: the known-task dataset.

`root` is the folder that holds `train/` and `val/`. Inside `<root>/<split>/` two layouts work:

- class folders: `<split>/<WNID>/<image>` (the `train/` layout, and `val/` after the usual
  reorganisation script). The label of an image is its folder.
- a flat folder: `<split>/<image>` plus a ground-truth file naming each image's class:
    * Kaggle's `LOC_<split>_solution.csv` (`ImageId,PredictionString`; the first token of
      PredictionString is the WNID). Found automatically in `root` or up to three folders above
      it (the Kaggle release keeps it three levels above `ILSVRC/Data/CLS-LOC`), or set
      `label_file`.
    * the devkit's `ILSVRC2012_validation_ground_truth.txt` (line i: the 1-based ILSVRC2012_ID of
      `ILSVRC2012_val_<i:08d>`), with the devkit's `meta.mat` beside it to map ids to WNIDs. Set
      `label_file` to it; it is not searched for.

`classes` picks the label space: `imagenet10` (the paper's 10 WNIDs, labels 0–9 in that order),
`all` (the 1000 ILSVRC classes, labels in sorted-WNID order, as timm's ImageNet models expect) or
an explicit list of WNIDs (labels in list order). Images of other classes are ignored; a
wanted class without any image is tolerated with a warning. Images are read as RGB and
resized (shorter side `resize`, default 256) and center-cropped (`size`, default 224).
"""

from __future__ import annotations

import csv
import functools
import logging
import re
from collections.abc import Callable, Sequence
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
    image_files,
    read_rgb,
    require_dir,
    resize_crop_or_native,
)
from miga.data.noisy_files import NoisyTwins

log = logging.getLogger(__name__)

#: ImageNet-10 (docs/architecture.md §3): labels 0–9 in this order.
IMAGENET10 = (
    "n02056570",  # king penguin
    "n02085936",  # Maltese dog
    "n02128757",  # snow leopard
    "n02690373",  # airliner
    "n02692877",  # airship
    "n03095699",  # container ship
    "n04254680",  # soccer ball
    "n04285008",  # sports car
    "n04467665",  # trailer truck
    "n07747607",  # orange
)

#: Named class sets `classes` accepts besides `all` and an explicit list.
CLASS_SETS: dict[str, Sequence[str]] = {"imagenet10": IMAGENET10}

WNID = re.compile(r"n\d{8}")
KAGGLE_LABELS = "LOC_{split}_solution.csv"


@functools.cache
def _imagenet_info():  # noqa: ANN202
    from timm.data import ImageNetInfo

    return ImageNetInfo()


def ilsvrc_wnids() -> list[str]:
    """The 1000 ILSVRC-2012 WNIDs in sorted order (timm ships the list; no download)."""
    return list(_imagenet_info().label_names())


def class_description(wnid: str) -> str:
    """Short English name of a WNID ("king penguin"); the WNID itself if unknown."""
    try:
        return _imagenet_info().label_name_to_description(wnid).split(",")[0]
    except (KeyError, ValueError):
        return wnid


def resolve_classes(classes: str | Sequence[str]) -> list[str]:
    """`imagenet10` | `all` | a list of WNIDs → the WNIDs in label order."""
    if isinstance(classes, str):
        if classes == "all":
            return ilsvrc_wnids()
        if classes not in CLASS_SETS:
            raise ValueError(
                f"dataset classes '{classes}': expected all, {' or '.join(CLASS_SETS)}, "
                f"or a list of WNIDs"
            )
        return list(CLASS_SETS[classes])
    wnids = [str(c) for c in classes]
    bad = [c for c in wnids if not WNID.fullmatch(c)]
    if bad or len(set(wnids)) != len(wnids) or not wnids:
        raise ValueError(f"dataset classes: need distinct WNIDs like n02056570, got {wnids[:12]}")
    return wnids


def read_kaggle_labels(path: Path) -> dict[str, str]:
    """`LOC_val_solution.csv` → {image stem: WNID}."""
    labels: dict[str, str] = {}
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
            raise BadImageError(f"{path}: expected the header ImageId,PredictionString")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            tokens = row[1].split() if len(row) > 1 else []
            if not tokens or not WNID.fullmatch(tokens[0]):
                raise BadImageError(f"{path}:{line}: no WNID at the start of {row[1:]!r}")
            stem = row[0].strip()
            if labels.get(stem, tokens[0]) != tokens[0]:
                raise BadImageError(f"{path}:{line}: {stem} labelled twice, differently")
            labels[stem] = tokens[0]
    return labels


def read_devkit_labels(path: Path) -> dict[str, str]:
    """`ILSVRC2012_validation_ground_truth.txt` + `meta.mat` beside it → {image stem: WNID}."""
    meta = path.parent / "meta.mat"
    if not meta.is_file():
        raise FileNotFoundError(
            f"{path} gives 1-based ILSVRC2012 ids; mapping them to WNIDs needs the devkit's "
            f"meta.mat beside it ({meta} not found)"
        )
    from scipy.io import loadmat

    synsets = loadmat(str(meta), squeeze_me=True)["synsets"]
    id_to_wnid = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets}
    labels = {}
    for line, text in enumerate(path.read_text().split(), start=1):
        if int(text) not in id_to_wnid:
            raise BadImageError(f"{path}:{line}: ILSVRC2012 id {text} not in {meta}")
        labels[f"ILSVRC2012_val_{line:08d}"] = id_to_wnid[int(text)]
    return labels


def find_label_file(root: Path, split: str) -> Path:
    """Kaggle's `LOC_<split>_solution.csv` in `root` or up to three folders above it."""
    name = KAGGLE_LABELS.format(split=split)
    for folder in [root, *list(root.resolve().parents)[:3]]:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"{root / split} holds images but no class folders, and no {name} was found in {root} "
        f"or the three folders above it: set dataset label_file to the ground-truth file "
        f"(Kaggle LOC_{split}_solution.csv, or the devkit's "
        f"ILSVRC2012_validation_ground_truth.txt with meta.mat beside it)"
    )


class ImageNet(AuditedDataset):
    """ImageNet images of the chosen classes with their labels, in a fixed order.

    Items are dicts {"image": (3,size,size) float [0,1], "label": int, "index": int}. The order is
    label-major, file names sorted within a class; `limit` keeps the first `limit` usable images
    of each class. Files skipped under `on_bad_image=skip` / `on_non_rgb=skip` are listed in
    `skipped_files` (count: `skipped`); images converted to RGB in `converted_files`.

    Args:
        root: folder holding `train/` and `val/`.
        split: sub-folder to read (`val`, `train`).
        classes: `imagenet10`, `all` or a list of WNIDs (see the module doc).
        size: side of the center crop; resize: shorter side before cropping. `size=None`:
            native size, no resize or crop (batch with `loader=pad_center`).
        limit: images per class (None: all).
        label_file: ground truth for a flat split folder (None: Kaggle CSV searched for).
        on_bad_image: `raise` | `skip` for unreadable/truncated/unlabelled files, missing images
            named by the label file and empty class folders.
        on_non_rgb: `convert` | `skip` | `raise` for grayscale/CMYK/RGBA/palette images.
        verify: decode every selected image once at construction (finds truncated files first).
        transform: optional PIL → PIL (size×size) transform replacing resize + center crop
            (training augmentation).
        noisy_root: a folder mirroring `root` with pre-noised images (`miga.data.noisy_files`);
            items then carry "noisy", resized and cropped like "image" (use `noise=from_disk`).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "val",
        classes: str | Sequence[str] = "imagenet10",
        size: int | None = 224,
        resize: int | None = 256,
        limit: int | None = None,
        label_file: str | Path | None = None,
        interpolation: str = "bilinear",
        on_bad_image: OnBadImage = "raise",
        on_non_rgb: OnNonRGB = "convert",
        verify: bool = True,
        transform: Callable[[Image.Image], Image.Image] | None = None,
        noisy_root: str | Path | None = None,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"dataset limit must be >= 1 or null, got {limit}")
        self.root = require_dir(
            Path(root), "ImageNet root", "set dataset.root to the folder that holds val/"
        )
        self.split_dir = require_dir(
            self.root / split,
            f"ImageNet split '{split}'",
            f"{self.root} holds {sorted(p.name for p in self.root.iterdir())[:10]}",
        )
        self.size, self.resize, self.interpolation = size, resize, interpolation
        self.transform = transform
        self.wnids = resolve_classes(classes)
        self.audit = FileAudit(on_bad_image, on_non_rgb, decode=verify)
        label_of = {wnid: i for i, wnid in enumerate(self.wnids)}
        class_dirs = {
            d.name: d for d in self.split_dir.iterdir() if d.is_dir() and WNID.fullmatch(d.name)
        }
        self._missing_why = "file not found"
        if class_dirs:
            files = self._from_class_folders(class_dirs, label_of)
        else:
            path = Path(label_file) if label_file else find_label_file(self.root, split)
            files = self._from_label_file(path, label_of)
        self.samples: list[tuple[Path, int]] = []
        missing = []
        for wnid in self.wnids:
            kept = self.audit.usable(files.get(wnid, []), limit, self._missing_why)
            if wnid in files and not kept and files[wnid]:
                log.warning("%s: no usable image of class %s", self.split_dir, wnid)
            if wnid not in files:
                missing.append(wnid)
            self.samples.extend((path, label_of[wnid]) for path in kept)
        if missing and len(missing) < len(self.wnids):
            log.warning(
                "%s: %d of %d classes have no images (%s%s)",
                self.split_dir,
                len(missing),
                len(self.wnids),
                ", ".join(missing[:10]),
                ", …" if len(missing) > 10 else "",
            )
        if not self.samples:
            raise BadImageError(
                f"{self.split_dir}: no usable images of the {len(self.wnids)} wanted classes "
                f"({', '.join(self.wnids[:5])}{', …' if len(self.wnids) > 5 else ''})"
            )
        self.audit.summarise(str(self.split_dir))
        self.class_names = {label_of[w]: class_description(w) for w in self.wnids}
        self.noisy: list[Path] | None = None
        if noisy_root is not None:
            self._pair_noisy(NoisyTwins(noisy_root, self.root), transform)

    def _pair_noisy(self, twins: NoisyTwins, transform: object) -> None:
        """Keep the samples whose noisy twin is usable; `self.noisy` lists the twins."""
        if transform is not None:
            raise ValueError(
                "dataset.noisy_root cannot be combined with a training transform: a random "
                "transform would crop the clean and the noisy image differently"
            )
        kept, noisy = [], []
        for path, label in self.samples:
            twin = twins.check(path, self.audit)
            if twin is not None:
                kept.append((path, label))
                noisy.append(twin)
        if not kept:
            raise BadImageError(f"{twins.root}: no usable pre-noised image for {self.split_dir}")
        self.samples, self.noisy = kept, noisy

    def _from_class_folders(
        self, class_dirs: dict[str, Path], label_of: dict[str, int]
    ) -> dict[str, list[Path]]:
        files = {}
        for wnid in self.wnids:
            if wnid not in class_dirs:
                continue
            images = image_files(class_dirs[wnid])
            if not images:
                self.audit.problem(f"{class_dirs[wnid]}/", "class folder holds no images")
                continue
            files[wnid] = images
        ignored = sorted(set(class_dirs) - set(label_of))
        if ignored:
            log.info("%s: ignoring %d class folders not in `classes`", self.split_dir, len(ignored))
        return files

    def _from_label_file(self, path: Path, label_of: dict[str, int]) -> dict[str, list[Path]]:
        if not path.is_file():
            raise FileNotFoundError(f"ImageNet label file not found: {path}")
        labels = read_devkit_labels(path) if path.suffix == ".txt" else read_kaggle_labels(path)
        present = {p.stem: p for p in image_files(self.split_dir)}
        for stem in sorted(set(present) - set(labels)):
            self.audit.problem(present[stem], f"not named in the label file {path}")
        # Images the label file names but the folder lacks stay in the list (without a file
        # ending): the audit reports them when (and only if) `limit` reaches them.
        self._missing_why = f"named by the label file {path} but not found (any file ending)"
        files: dict[str, list[Path]] = {}
        for stem in sorted(labels):
            if labels[stem] in label_of:
                files.setdefault(labels[stem], []).append(present.get(stem, self.split_dir / stem))
        return files

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, path: Path) -> Tensor:
        image = read_rgb(path)
        if self.transform is not None:
            image = self.transform(image)
        else:
            image = resize_crop_or_native(image, self.resize, self.size, self.interpolation)
        return to_tensor(image)

    def __getitem__(self, index: int) -> dict[str, Tensor | int]:
        path, label = self.samples[index]
        item: dict[str, Tensor | int] = {"image": self._load(path), "label": label, "index": index}
        if self.noisy is not None:
            item["noisy"] = self._load(self.noisy[index])
        return item
