"""The defense interface: a real transform for evaluation, a differentiable path for attacks.

Adaptive vs non-adaptive (config `defense.adaptive`): an *adaptive* attack optimises through
the defense's `surrogate` (the transform itself when it is differentiable, BPDA otherwise); a
*non-adaptive* one optimises through the identity, as if there were no defense. Evaluation
always goes through `forward`, the real transform (PIL's JPEG codec, the exact median, ...).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from torch import Tensor, nn


def bpda(image: Tensor, transformed: Tensor) -> Tensor:
    """Backward-pass differentiable approximation (Athalye et al. 2018) with the identity.

    The value is `transformed`; the gradient w.r.t. `image` is the identity's.
    """
    return image + (transformed - image).detach()


class Defense(nn.Module, ABC):
    """An input transform before the denoiser.

    Args:
        adaptive: the attack optimises through `surrogate` (True) or the identity (False).
    """

    def __init__(self, adaptive: bool = True) -> None:
        super().__init__()
        self.adaptive = bool(adaptive)

    @abstractmethod
    def forward(self, image: Tensor, index: Tensor | None = None, seed: int = 0) -> Tensor:
        """The real transform (evaluation). Random defenses draw per sample from (seed, index)."""

    def surrogate(self, image: Tensor) -> Tensor:
        """What an adaptive attack differentiates through: BPDA of `forward` by default."""
        return bpda(image, self.forward(image.detach()))

    def attack_forward(self, image: Tensor) -> Tensor:
        """The attack's path: `surrogate` when adaptive, the identity when not."""
        return self.surrogate(image) if self.adaptive else image


class NoDefense(Defense):
    """The identity (`defense=none`)."""

    def forward(self, image: Tensor, index: Tensor | None = None, seed: int = 0) -> Tensor:
        return image

    def surrogate(self, image: Tensor) -> Tensor:
        return image
