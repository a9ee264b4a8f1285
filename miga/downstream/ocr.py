"""Tesseract OCR as a downstream model (the `ocr` downstream, text-tampering cells).

The engine is the OS package `tesseract-ocr` (`make install` adds it where missing), driven
through `pytesseract`. Like every downstream model it takes [0,1] RGB NCHW; it returns the text
of each image (OCR is not differentiable: it scores, it does not guide an attack).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image
from torch import Tensor, nn

INSTALL_HINT = (
    "install the Tesseract engine (`apt-get install -y tesseract-ocr`, or `make install`) "
    "and the Python package `pytesseract`"
)


def tesseract_module():  # noqa: ANN201
    """`pytesseract`, with the engine checked, or an error that says how to install both."""
    try:
        import pytesseract
    except ImportError as err:
        raise ImportError(f"downstream=ocr needs pytesseract: {INSTALL_HINT}") from err
    try:
        pytesseract.get_tesseract_version()
    except (pytesseract.TesseractNotFoundError, OSError) as err:
        raise RuntimeError(f"the tesseract executable was not found: {INSTALL_HINT}") from err
    return pytesseract


@contextmanager
def engine_threads(threads: int | None) -> Iterator[None]:
    """OMP_THREAD_LIMIT for the Tesseract child process only.

    pytesseract starts the engine with this process's environment; the variable is set just for
    that call and restored after, because a process-wide OMP_THREAD_LIMIT=1 would reach
    torch in subprocesses started later (one such child spun for minutes in a check).
    """
    if threads is None:
        yield
        return
    before = os.environ.get("OMP_THREAD_LIMIT")
    os.environ["OMP_THREAD_LIMIT"] = str(threads)
    try:
        yield
    finally:
        if before is None:
            del os.environ["OMP_THREAD_LIMIT"]
        else:
            os.environ["OMP_THREAD_LIMIT"] = before


def normalise_text(text: str) -> str:
    """Collapse whitespace (lines, tabs, form feeds) into single spaces."""
    return re.sub(r"\s+", " ", text).strip()


class TesseractOCR(nn.Module):
    """`forward(images) -> list[str]`: the text Tesseract reads in each image.

    Args:
        lang: Tesseract language pack(s), e.g. `eng` or `eng+deu` (must be installed).
        psm: page segmentation mode (6: one uniform block of text; 3: automatic layout).
        upscale: resize factor before OCR (Tesseract reads best at ~30 px letter height).
        config: extra Tesseract command-line options.
        threads: OMP_THREAD_LIMIT for the engine (1 avoids oversubscribing the CPU).
    """

    def __init__(
        self,
        lang: str = "eng",
        psm: int = 6,
        upscale: float = 1.0,
        config: str = "",
        threads: int | None = 1,
    ) -> None:
        super().__init__()
        self._tesseract = tesseract_module()
        languages = set(self._tesseract.get_languages(config=""))
        wanted = set(lang.split("+"))
        if not wanted <= languages:
            raise RuntimeError(
                f"Tesseract has no language pack {sorted(wanted - languages)} (installed: "
                f"{sorted(languages)}); e.g. apt-get install -y tesseract-ocr-<lang>"
            )
        self.lang, self.psm, self.upscale, self.config = lang, psm, upscale, config
        self.threads = threads
        self.requires_grad_(False).eval()

    def read(self, image: Image.Image) -> str:
        """The normalised text of one PIL image."""
        if self.upscale != 1.0:
            width, height = image.size
            size = (max(1, round(width * self.upscale)), max(1, round(height * self.upscale)))
            image = image.resize(size, Image.Resampling.BICUBIC)
        options = f"--psm {self.psm} {self.config}".strip()
        with engine_threads(self.threads):
            text = self._tesseract.image_to_string(image, lang=self.lang, config=options)
        return normalise_text(text)

    def forward(self, images: Tensor) -> list[str]:
        pixels = (images.detach().float().clamp(0, 1) * 255).round().byte()
        arrays = pixels.permute(0, 2, 3, 1).cpu().numpy()
        return [self.read(Image.fromarray(np.ascontiguousarray(a))) for a in arrays]
