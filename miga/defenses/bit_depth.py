"""Bit-depth reduction (feature squeezing, Xu et al. 2018), BPDA for the attack."""

from __future__ import annotations

from torch import Tensor

from miga.defenses.base import Defense


class BitDepth(Defense):
    """Quantise each value to `bits` bits: round(x·(2^b − 1)) / (2^b − 1)."""

    def __init__(self, bits: int = 4, adaptive: bool = True) -> None:
        super().__init__(adaptive)
        if not 1 <= bits <= 16:
            raise ValueError(f"bit_depth.bits must be in 1..16, got {bits}")
        self.bits = int(bits)

    def forward(self, image: Tensor, index: Tensor | None = None, seed: int = 0) -> Tensor:
        levels = 2**self.bits - 1
        return (image.clamp(0.0, 1.0) * levels).round() / levels
