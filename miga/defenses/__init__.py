"""Input transforms placed before the denoiser (docs/architecture.md §3), one file per defence.

Each is a `Defense`: `forward` is the real transform used at evaluation, `attack_forward` the
path an attack differentiates through (the differentiable or BPDA form when the attack is
adaptive, the identity when it is not).
"""

from miga.defenses.base import Defense, NoDefense, bpda
from miga.defenses.bit_depth import BitDepth
from miga.defenses.blur import GaussianBlur
from miga.defenses.jpeg import JPEG
from miga.defenses.median import MedianFilter
from miga.defenses.resize_pad import ResizePad

__all__ = [
    "JPEG",
    "BitDepth",
    "Defense",
    "GaussianBlur",
    "MedianFilter",
    "NoDefense",
    "ResizePad",
    "bpda",
]
