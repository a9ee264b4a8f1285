"""Write a folder of pre-noised images as the MIGA authors had them (for `noise=from_disk`).

    python -m miga.data.make_noisy --src /data/imagenet --dst /data/imagenet-noisy-50 --sigma 50

For every image under `--src` (recursively), Gaussian noise of σ/255 is added to the *full-size*
image, the result is clipped to [0, 255], rounded to 8 bits and written as a PNG at the same
relative path under `--dst` with the ending `.png`: the layout `dataset.noisy_root` expects
(miga.data.noisy_files). The cell then resizes and crops the noisy file exactly like the clean
one, which is the order the authors' released scripts imply (noisy PNGs on disk, transformed on
loading), unlike `noise=gaussian`, which adds float noise after the crop.

Each file's noise comes from a generator seeded by (--seed, its relative path): the same command
writes the same bytes, whatever else the folder holds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from miga.data.images import IMAGE_EXTENSIONS, read_rgb
from miga.utils.seeding import sample_seed


def noisy_uint8(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """`clean` (H, W, 3) uint8 plus N(0, σ²) in 8-bit units, clipped and rounded to uint8."""
    rng = np.random.default_rng(seed)
    noisy = clean.astype(np.float64) + rng.standard_normal(clean.shape) * sigma
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def make_noisy(src: Path, dst: Path, sigma: float, seed: int = 0) -> list[Path]:
    """Write the noisy twin of every image under `src` to `dst`; returns the files written."""
    if sigma < 0:
        raise ValueError(f"--sigma must be >= 0, got {sigma}")
    if not src.is_dir():
        raise FileNotFoundError(f"--src {src} is not a folder of clean images")
    if dst.resolve() == src.resolve():
        raise ValueError(f"--dst {dst} is the --src folder: write the noisy twins elsewhere")
    written = []
    for path in sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS):
        relative = path.relative_to(src)
        target = (dst / relative).with_suffix(".png")
        clean = np.asarray(read_rgb(path), dtype=np.uint8)
        noisy = noisy_uint8(clean, sigma, sample_seed(seed, 0, f"make_noisy/{relative.as_posix()}"))
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(noisy, "RGB").save(target)
        written.append(target)
    if not written:
        raise FileNotFoundError(f"--src {src} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True, help="folder of clean images")
    parser.add_argument("--dst", type=Path, required=True, help="where the noisy PNGs go")
    parser.add_argument("--sigma", type=float, required=True, help="σ in 8-bit units (25, 50)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    written = make_noisy(args.src, args.dst, args.sigma, args.seed)
    print(f"wrote {len(written)} noisy PNGs (sigma {args.sigma:g}) under {args.dst}")


if __name__ == "__main__":
    main()
