"""Delivery: what the victim really receives — the attacked image as a file, in 8 bits.

An attack scored on the float x_n+δ claims a perturbation no file can carry: at ε = 0.5/255
every value of δ rounds to 0 or to a whole grey level (twice ε) when the image is saved. A
`Delivery` (config group `delivery`) says what reaches the victim, and the cell then attacks
and scores exactly that:

- `none` (`NoDelivery`): today's float x_n+δ (the paper's setting);
- `png` (`PNGDelivery`): x_n and x_n+δ are 8-bit images, exactly what a PNG holds;
- `jpeg` (`JPEGDelivery`): the 8-bit image further goes through a real JPEG encoder (PIL) at
  `quality`.

Semantics (`miga.module.AttackModule` applies them):

1. The noisy image the attacker starts from is the file's: x_n := Q(x_n) = round(255·clip(x_n,
   0, 1))/255. A file holds no value outside [0,1], so with `noise.clip=false` the values
   outside are clipped here (the float-protocol of `noise.clip=false` does not survive delivery).
2. The attack optimises through the delivery (`attack_forward`): *straight-through* rounding —
   the forward value is Q(x_n+δ) (then the codec, for JPEG: the defenses' BPDA path,
   `miga.defenses.JPEG.surrogate`), the backward pass the identity's. Rounding has zero gradient
   almost everywhere; the identity is the standard BPDA choice (Athalye et al. 2018) and keeps
   every attack's update rule unchanged.
3. What is scored is the delivered image: the file Q(x_n+δ) (`deliver`), through `forward`
   (identity for PNG, the codec for JPEG), the defense and the denoiser. The reported δ is the
   delivered one, Q(x_n+δ) − x_n: a multiple of 1/255.

**Why the budget lives on the 8-bit grid** (L∞ ε = k/255, k integer; any other ε is refused by
`check_budget`). Let x_n = n/255 with n an integer (step 1), |δ| ≤ k/255 per value. With
v = 255·(x_n+δ), |v − n| ≤ k, and since n is an integer, round(v) − n = round(v − n), whose
magnitude is ≤ k because k is an integer and |v − n| ≤ k (rounding never crosses an integer
it does not exceed). So |Q(x_n+δ) − x_n| ≤ k/255 = ε: the delivered δ never exceeds ε. With
ε = 0.5/255 no such bound exists: a δ of 0.5/255 rounds to a whole level, 1/255 = 2ε, or to 0.

**Other budgets** (L2, the zero-mean L2 balls of ObsAtk/denoising-PGD): rounding to the nearest
level may push ‖δ‖₂ above the radius (values of 0.6/255 become 1/255). Each sample whose rounded
δ leaves its budget (`Budget.size` > `Budget.bound`) is delivered rounded *towards x_n* instead:
every value then has |δ_delivered| ≤ |δ|, so any norm ball δ was in still holds it. A zero-mean
constraint is not preserved by rounding (the delivered δ is only near zero-mean).
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor, nn

from miga.defenses.base import bpda
from miga.defenses.jpeg import JPEG


class Budget(Protocol):
    """What delivery reads of an attack budget (`miga.attacks.budgets.Budget` meets it; the
    threat models sit below the attacks, so they name the budget by what it answers)."""

    norm: str  # "linf", "l2", "l2_zero_mean", "none"
    epsilon: float

    def size(self, delta: Tensor) -> Tensor: ...

    def bound(self, numel: int) -> float: ...

#: Levels of an 8-bit file.
LEVELS = 255


def quantise(image: Tensor) -> Tensor:
    """What an 8-bit file of `image` holds, back in [0,1]: round(255·clip(image, 0, 1))/255."""
    return image.clamp(0.0, 1.0).mul(LEVELS).round().div(LEVELS)


def to_uint8(image: Tensor) -> Tensor:
    """The 8-bit values a file written from `image` holds (uint8, same shape)."""
    return image.detach().clamp(0.0, 1.0).mul(LEVELS).round().to(torch.uint8)


def straight_through(image: Tensor, delivered: Tensor) -> Tensor:
    """Forward `delivered`, backward the identity (the defenses' BPDA, `miga.defenses.base`)."""
    return bpda(image, delivered)


class Delivery(nn.Module):
    """How the attacked image reaches the victim. The base class is the float image itself.

    `forward` is the real channel (evaluation), applied to a file `deliver` wrote;
    `attack_forward` the path an attack differentiates through.
    """

    #: The word `summary.json` and the report print for this delivery.
    name: str = "none"

    def source(self, noisy: Tensor) -> Tensor:
        """The noisy image as the attacker's file holds it (identity without a file)."""
        return noisy

    def deliver(
        self, noisy: Tensor, delta: Tensor, budget: Budget | None = None
    ) -> tuple[Tensor, Tensor]:
        """The image the attacker sends for x_n+δ and the δ it carries (without a file: x_n+δ
        and δ itself, unchanged to the bit)."""
        return noisy + delta, delta

    def forward(self, image: Tensor) -> Tensor:
        """What the victim receives from the sent image (the real channel)."""
        return image

    def attack_forward(self, image: Tensor) -> Tensor:
        """The attack's differentiable view of `forward(deliver(…))`."""
        return image

    def check_budget(self, budget: Budget | None) -> None:
        """Refuse a budget the delivered file cannot honour (none: any budget)."""

    def describe(self) -> str:
        """`name` plus any setting that changes the numbers (`summary.json`'s `delivery`)."""
        return self.name


class NoDelivery(Delivery):
    """`delivery=none`: the victim receives the float x_n+δ (the paper's setting)."""


class PNGDelivery(Delivery):
    """`delivery=png`: x_n and x_n+δ are 8-bit images, exactly what a PNG file holds (PNG is
    lossless: the file's values are round(255·image), and reading it back gives them unchanged).

    The attack rounds straight-through; the L∞ budget must be k/255 (module docstring)."""

    name = "png"

    def source(self, noisy: Tensor) -> Tensor:
        return quantise(noisy)

    def deliver(
        self, noisy: Tensor, delta: Tensor, budget: Budget | None = None
    ) -> tuple[Tensor, Tensor]:
        """The file Q(x_n+δ) for `noisy` = x_n on the grid, and the delivered δ = Q(x_n+δ) − x_n."""
        sent = self._file(noisy, delta, budget)
        return sent, sent - noisy

    @staticmethod
    def _file(noisy: Tensor, delta: Tensor, budget: Budget | None) -> Tensor:
        """Q(x_n+δ), rounded towards x_n instead for the samples whose nearest rounding leaves
        a (non-grid) `budget`, so the delivered δ stays inside it (module docstring)."""
        nearest = quantise(noisy + delta)
        if budget is None or budget.norm == "linf" or math.isinf(budget.epsilon):
            return nearest  # L∞ on the grid: inside by the module docstring's argument
        numel = noisy[0].numel()
        outside = budget.size(nearest - noisy) > budget.bound(numel)
        levels = noisy.mul(LEVELS).round()
        towards = (levels + torch.trunc((noisy + delta).clamp(0.0, 1.0) * LEVELS - levels)) / LEVELS
        return torch.where(outside.view(-1, *([1] * (noisy.dim() - 1))), towards, nearest)

    def forward(self, image: Tensor) -> Tensor:
        return quantise(image)

    def attack_forward(self, image: Tensor) -> Tensor:
        return straight_through(image, quantise(image.detach()))

    def check_budget(self, budget: Budget | None) -> None:
        """An L∞ ε must be a whole number of grey levels, k/255."""
        if budget is None or budget.norm != "linf":
            return
        levels = budget.epsilon * LEVELS
        if abs(levels - round(levels)) > 1e-6 * max(1.0, levels):
            raise ValueError(
                f"budget.epsilon={budget.epsilon:g} ({levels:g}/255) cannot be carried by an "
                f"8-bit file (delivery={self.name}): every value of δ is delivered as a whole "
                f"number of grey levels, so ε must be k/255 for an integer k (e.g. 1/255 = "
                f"{1 / LEVELS!r}); an ε below 1/255 rounds to 0 or to a level larger than ε"
            )


class JPEGDelivery(PNGDelivery):
    """`delivery=jpeg`: the 8-bit image is sent as a JPEG at `quality` (PIL's encoder, 4:2:0,
    standard tables); the victim decodes it. The attack goes through the defenses' JPEG path
    (`miga.defenses.JPEG`: BPDA, forward the real codec, backward the identity).

    The reported δ is the one of the 8-bit image the attacker encodes, Q(x_n+δ) − x_n (bounded
    as under `png`); the codec's own error is part of the channel, not of δ."""

    name = "jpeg"

    def __init__(self, quality: int = 75) -> None:
        super().__init__()
        self.codec = JPEG(quality=quality, adaptive=True)

    @property
    def quality(self) -> int:
        return self.codec.quality

    def forward(self, image: Tensor) -> Tensor:
        return self.codec(image)

    def attack_forward(self, image: Tensor) -> Tensor:
        return self.codec.surrogate(image)

    def describe(self) -> str:
        return f"jpeg_q{self.quality}"
