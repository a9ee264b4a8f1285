"""Pre-noised images on disk beside the clean ones: where each is, and checks that it fits.

The MIGA authors' scripts read noisy inputs from a folder tree that mirrors the clean one
(`imagenet-10-noisy-50/test/<WNID>/<name>` beside `imagenet-10/test/<WNID>/<name>`;
`origin_sigma=25/<n>.png` for the unknown task). Here `dataset.noisy_root` mirrors
`dataset.root`: the noisy twin of `<root>/<relative path>` is `<noisy_root>/<relative path>`,
or, when that does not exist, the same path with the ending `.png` (8-bit PNGs written for
JPEG originals, as `python -m miga.data.make_noisy` does). A twin must have the clean image's
size: it is resized and cropped exactly like the clean one.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from miga.data.images import FileAudit, require_dir


class NoisyTwins:
    """Finds and checks the noisy twin of each clean file of a dataset.

    Args:
        noisy_root: the folder that mirrors the dataset's root with noisy images.
        clean_root: the dataset's root (`dataset.root`).
    """

    def __init__(self, noisy_root: str | Path, clean_root: Path) -> None:
        self.root = require_dir(
            Path(noisy_root),
            "noisy image folder (dataset.noisy_root)",
            f"it mirrors dataset.root {clean_root} with noisy images; "
            f"python -m miga.data.make_noisy writes one",
        )
        self.clean_root = clean_root

    def candidates(self, clean: Path) -> list[Path]:
        """Where the twin of `clean` may be: the same relative path, then with `.png`."""
        relative = clean.relative_to(self.clean_root)
        same = self.root / relative
        png = same.with_suffix(".png")
        return [same] if png == same else [same, png]

    def find(self, clean: Path) -> Path | None:
        """The twin of `clean`, or None when neither candidate exists."""
        return next((path for path in self.candidates(clean) if path.is_file()), None)

    def check(self, clean: Path, audit: FileAudit) -> Path | None:
        """The twin of `clean` if it exists, reads and has the clean image's size; else the
        problem is raised or counted by `audit` (naming the file and the naming scheme)."""
        twin = self.find(clean)
        if twin is None:
            tried = " or ".join(str(path) for path in self.candidates(clean))
            audit.problem(
                clean,
                f"no pre-noised twin: expected {tried} (dataset.noisy_root mirrors "
                f"dataset.root: same relative path, or the same with the ending .png)",
            )
            return None
        if not audit.check(twin):
            return None
        with Image.open(clean) as a, Image.open(twin) as b:
            clean_size, twin_size = a.size, b.size
        if clean_size != twin_size:
            audit.problem(
                twin,
                f"pre-noised image is {twin_size[0]}x{twin_size[1]} (W x H) but its clean image "
                f"{clean} is {clean_size[0]}x{clean_size[1]}: noise is added to the full-size "
                f"image, both are resized and cropped alike",
            )
            return None
        return twin
