"""The embedded unknown-task demo (`dataset=demo_text`): rendered sentences, tampered twins.

Nothing ships as an image and nothing is downloaded: each item is rendered on the fly with
Pillow's built-in scalable font (`ImageFont.load_default(size=…)`, Pillow ≥ 10.1), black on
white. The `reference` is the same sentence with one word changed by one or two characters, the
way a document is tampered with (a digit, a name, a letter), so that D(x_n+δ) pulled towards the
reference reads differently while staying pixel-close to the original (docs/architecture.md §3, text
tampering). Clean renders read back through Tesseract with ROUGE-L 1.0 (64×256, font size 22).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torch.utils.data import Dataset

#: (original, tampered) sentences: one word changed, by one or two characters (a digit, a letter),
#: the way a document is forged; small in pixels, decisive in meaning.
SENTENCES: tuple[tuple[str, str], ...] = (
    ("The meeting is at 10 am", "The meeting is at 11 am"),
    ("Pay Anna 300 euros", "Pay Anna 800 euros"),
    ("The door code is 4721", "The door code is 4727"),
    ("Meet Tom by the lake", "Meet Tim by the lake"),
    ("The cat sat on the mat", "The rat sat on the mat"),
    ("Ship order 58 today", "Ship order 38 today"),
    ("Room 12 is open", "Room 17 is open"),
    ("Send the red file", "Send the bed file"),
    ("Call me at nine", "Call me at nice"),
    ("Gate B closes at 9", "Gate D closes at 9"),
    ("Total due 45 dollars", "Total due 46 dollars"),
    ("Train leaves at 7 pm", "Train leaves at 1 pm"),
    ("Take one pill daily", "Take one pill dally"),
    ("Vote yes on item 3", "Vote yes on item 8"),
    ("Lab results are fine", "Lab results are five"),
    ("Buy milk and bread", "Buy silk and bread"),
    ("Price is 20 per kg", "Price is 28 per kg"),
    ("Flight 406 is on time", "Flight 408 is on time"),
    ("Keep this box dry", "Keep this fox dry"),
    ("Invoice paid in full", "Invoice paid in fall"),
    ("Speed limit is 30", "Speed limit is 80"),
    ("The bridge is safe", "The bridge is sale"),
    ("Lock the back door", "Lock the bank door"),
    ("Bring the hot tea", "Bring the hat tea"),
)

SPLITS = ("all", "train", "test", "train_a", "train_b")


def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled scalable font (no system font needed)."""
    return ImageFont.load_default(size=size)


def render(
    text: str, height: int = 64, width: int = 256, font_size: int = 22, margin: int = 8
) -> Tensor:
    """`text` in black on white, one line: (3, height, width) float in [0,1].

    Left-aligned at `margin` on a fixed baseline (vertically centred from the font's ascent and
    descent, not from this text's box), so a tampered sentence keeps every glyph before its
    changed word at the same pixels.
    """
    typeface = font(font_size)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    ascent, descent = typeface.getmetrics()
    baseline = (height + ascent - descent) / 2
    left, top, right, bottom = draw.textbbox((margin, baseline), text, font=typeface, anchor="ls")
    if left < 0 or top < 0 or right > width or bottom > height:
        raise ValueError(
            f"{text!r} at font size {font_size} (box {left},{top}..{right},{bottom}) does not "
            f"fit a {width}x{height} image"
        )
    draw.text((margin, baseline), text, fill=0, font=typeface, anchor="ls")
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
    return pixels.unsqueeze(0).expand(3, -1, -1).contiguous()


@lru_cache(maxsize=256)
def _rendered(text: str, height: int, width: int, font_size: int) -> Tensor:
    return render(text, height, width, font_size)


def split_indices(n: int, split: str, test_every: int = 4) -> list[int]:
    """Sentence positions of `split`: every `test_every`-th sentence is held out (`test`)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "all":
        return list(range(n))
    held_out = split == "test"
    chosen = [i for i in range(n) if (i % test_every == test_every - 1) == held_out]
    if split in ("train_a", "train_b"):  # two disjoint halves of `train`, alternating
        return chosen[split == "train_b" :: 2]
    return chosen


class DemoText(Dataset):
    """Rendered (sentence, tampered sentence) pairs.

    Items are dicts {"image": (3,H,W), "reference": (3,H,W), "index": int, "text": str,
    "reference_text": str}; `index` is the item's position in this dataset (results key and
    noise seed). The default collate turns the strings into lists.

    Args:
        height, width: image size (the demo uses 64×256: one line of ~16 px letters).
        font_size: Pillow font size in px.
        split: `all` sentences, or `train` / `test` (every 4th sentence held out, for
            training a critic and checking it on pairs it has not seen); `train_a` / `train_b`
            are the two alternating halves of `train` (a second critic, trained on another
            split with another seed, judges the attack without having guided it).
        limit: keep the first `limit` sentences of the split (None: all).
        sentences: (original, tampered) pairs; default `SENTENCES`.
    """

    def __init__(
        self,
        height: int = 64,
        width: int = 256,
        font_size: int = 22,
        split: str = "all",
        limit: int | None = None,
        sentences: Sequence[Sequence[str]] | None = None,
    ) -> None:
        pairs = [tuple(p) for p in (sentences if sentences is not None else SENTENCES)]
        if any(len(p) != 2 for p in pairs):
            raise ValueError("sentences must be (original, tampered) pairs")
        chosen = [pairs[i] for i in split_indices(len(pairs), split)]
        self.pairs = chosen[:limit] if limit else chosen
        self.height, self.width, self.font_size = height, width, font_size
        for original, tampered in self.pairs:  # fail at construction if a line does not fit
            self._render(original), self._render(tampered)

    def _render(self, text: str) -> Tensor:
        return _rendered(text, self.height, self.width, self.font_size).clone()

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Tensor | int | str]:
        original, tampered = self.pairs[index]
        return {
            "image": self._render(original),
            "reference": self._render(tampered),
            "index": index,
            "text": original,
            "reference_text": tampered,
        }
