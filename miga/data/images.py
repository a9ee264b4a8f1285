"""Image files on disk: finding them, checking them, reading them as RGB, resizing them.

Every on-disk dataset goes through `FileAudit`: a missing, unreadable or truncated file either
raises `BadImageError` (naming the file) or is skipped, logged and counted, as the dataset's
`on_bad_image` says; a grayscale/CMYK/RGBA/palette image is converted to RGB and counted, skipped
or refused, as `on_non_rgb` says. Nothing is dropped or changed silently.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode

log = logging.getLogger(__name__)

#: File endings read as images (compared lower-case); other files are ignored.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")

OnBadImage = Literal["raise", "skip"]
OnNonRGB = Literal["convert", "skip", "raise"]


class BadImageError(ValueError):
    """A dataset file is missing, unreadable, truncated, unlabelled or of an unwanted mode."""


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def natural_key(text: str) -> list[int | str]:
    """Sort key that orders `2.png` before `10.png` (digit runs compare as numbers)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def image_files(folder: Path) -> list[Path]:
    """The image files directly inside `folder`, sorted by name (deterministic)."""
    return sorted((p for p in folder.iterdir() if is_image_file(p)), key=lambda p: p.name)


def require_dir(path: Path, what: str, hint: str) -> Path:
    """`path` if it is a folder, else a `FileNotFoundError` saying what was expected there."""
    if not path.is_dir():
        raise FileNotFoundError(f"{what} not found: {path} ({hint})")
    return path


@dataclass
class FileAudit:
    """Checks files against the dataset's policies and keeps the record of what it skipped.

    `skipped_files` holds every file (or folder) left out, `converted_files` every image read
    through an RGB conversion. `check` fully decodes an image when `decode` is true, so that
    truncated files are found before a run starts rather than in the middle of it.
    """

    on_bad_image: OnBadImage = "raise"
    on_non_rgb: OnNonRGB = "convert"
    decode: bool = True
    skipped_files: list[str] = field(default_factory=list)
    converted_files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.on_bad_image not in ("raise", "skip"):
            raise ValueError(f"on_bad_image must be raise | skip, got '{self.on_bad_image}'")
        if self.on_non_rgb not in ("convert", "skip", "raise"):
            raise ValueError(f"on_non_rgb must be convert | skip | raise, got '{self.on_non_rgb}'")

    def problem(self, path: Path | str, why: str) -> None:
        """Raise, or log and count a skip, as `on_bad_image` says."""
        if self.on_bad_image == "raise":
            raise BadImageError(
                f"{path}: {why} (set the dataset's on_bad_image=skip to skip and count such files)"
            )
        log.warning("skipping %s: %s", path, why)
        self.skipped_files.append(str(path))

    def check(self, path: Path, missing_why: str = "file not found") -> bool:
        """True if `path` is a usable image under the policies (else raised or counted)."""
        if not path.is_file():
            self.problem(path, missing_why)
            return False
        try:
            with Image.open(path) as image:
                mode = image.mode
                if self.decode:
                    image.draft("RGB", (64, 64))  # JPEG: decode at reduced scale, still whole
                    image.load()
        except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, … by format
            self.problem(path, f"unreadable image ({type(err).__name__}: {err})")
            return False
        if mode == "RGB":
            return True
        if self.on_non_rgb == "raise":
            raise BadImageError(
                f"{path}: image mode {mode}, not RGB (set the dataset's on_non_rgb=convert to "
                f"convert it, or skip to leave it out)"
            )
        if self.on_non_rgb == "skip":
            log.warning("skipping %s: image mode %s, not RGB", path, mode)
            self.skipped_files.append(str(path))
            return False
        self.converted_files.append(str(path))
        return True

    def usable(
        self, paths: Iterable[Path], limit: int | None = None, missing_why: str = "file not found"
    ) -> list[Path]:
        """The first `limit` (all if None) usable images of `paths`, in the given order."""
        kept = []
        for path in paths:
            if limit is not None and len(kept) >= limit:
                break
            if self.check(path, missing_why):
                kept.append(path)
        return kept

    def summarise(self, name: str) -> None:
        if self.skipped_files:
            log.warning("%s: skipped %d files", name, len(self.skipped_files))
        if self.converted_files:
            log.info("%s: converted %d non-RGB images to RGB", name, len(self.converted_files))


def read_rgb(path: Path) -> Image.Image:
    """Read an image as 8-bit RGB: alpha composited on white, 16-bit scaled, CMYK/L converted."""
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except Exception as err:
        raise BadImageError(f"{path}: cannot be read as an image ({err})") from err


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image.copy()
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        if image.mode == "F":
            scale = 1.0 if values.max() <= 1.0 else 255.0
        gray = np.clip(values / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


INTERPOLATIONS = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}


def resize_center_crop(
    image: Image.Image, resize: int, crop: int, interpolation: str = "bilinear"
) -> Image.Image:
    """Shorter side to `resize` (antialiased), then the central `crop`×`crop` square."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {sorted(INTERPOLATIONS)}")
    if crop > resize:
        raise ValueError(f"crop size {crop} is larger than the resize size {resize}")
    image = TF.resize(image, resize, interpolation=INTERPOLATIONS[interpolation], antialias=True)
    return TF.center_crop(image, [crop, crop])


def resize_crop_or_native(
    image: Image.Image, resize: int | None, crop: int | None, interpolation: str = "bilinear"
) -> Image.Image:
    """`resize_center_crop`, or the image unchanged when `crop` is None (native size: the
    authors' unknown-task protocol; batch such items with `loader=pad_center`)."""
    if crop is None:
        return image
    return resize_center_crop(image, resize or crop, crop, interpolation)


class AuditedDataset(Dataset):
    """A dataset whose files pass a `FileAudit`: what it skipped and converted, for the results
    (`n_skipped_files`) and for the researcher."""

    audit: FileAudit

    @property
    def skipped_files(self) -> list[str]:
        return self.audit.skipped_files

    @property
    def skipped(self) -> int:
        return len(self.audit.skipped_files)

    @property
    def converted_files(self) -> list[str]:
        return self.audit.converted_files
