"""What an attack step sees: the batch's fixed inputs, the victim models and the current δ.

Loss terms, MI estimators and stopping rules all read one `StepState`, so adding a term never
changes the loop's signature, and a quantity several terms need (the downstream model's logits on
D(x_n+δ)) is computed once per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from miga.defenses.base import Defense
from miga.threats.delivery import Delivery


@dataclass
class Victim:
    """The frozen models an attack goes through: optional delivery (the channel the image
    reaches the victim by, `miga.threats`) → optional defense → denoiser → downstream model."""

    denoiser: nn.Module
    downstream: nn.Module | None = None
    defense: nn.Module | None = None
    delivery: Delivery | None = None

    def denoise(self, image: Tensor, clamp: bool | None = None) -> Tensor:
        """The attack's path: D(defense's attack form(delivery's attack form(image))).

        A `Defense` offers `attack_forward` (its differentiable/BPDA form when the attack is
        adaptive, the identity when not); any other module is applied as it is. The delivery's
        attack form is straight-through rounding (and BPDA JPEG), `miga.threats.delivery`.
        `clamp` (None: as the denoiser is configured) asks the denoiser for its [0,1]-clamped or
        raw output (`attack.clamp_output`; the denoiser's forward must take `clamp=`).
        """
        if self.delivery is not None:
            image = self.delivery.attack_forward(image)
        if self.defense is not None:
            image = getattr(self.defense, "attack_forward", self.defense)(image)
        if clamp is None:
            return self.denoiser(image)
        return self.denoiser(image, clamp=clamp)

    def evaluate(self, image: Tensor, index: Tensor | None = None, seed: int = 0) -> Tensor:
        """The evaluation path: D(defense(image)) with the real transform (e.g. PIL's JPEG);
        random defenses draw per sample from (seed, index). `image` is what was sent; the
        victim receives the delivery's output (PNG: the same 8-bit values, JPEG: the codec's)."""
        if self.delivery is not None:
            image = self.delivery(image)
        if isinstance(self.defense, Defense):
            image = self.defense(image, index=index, seed=seed)
        elif self.defense is not None:
            image = self.defense(image)
        return self.denoiser(image)


@dataclass
class AttackInputs:
    """Per-batch tensors fixed for the whole attack (computed once, without gradients).

    `clean` x, `noisy` x_n, `denoised` D(x_n), `label` the true class (known task) and
    `reference` the semantically altered image (unknown task); `index` the global dataset
    indices, which seed per-sample random streams (random starts) reproducibly.
    """

    clean: Tensor
    noisy: Tensor
    denoised: Tensor
    index: Tensor
    label: Tensor | None = None
    reference: Tensor | None = None
    seed: int = 0

    def __len__(self) -> int:
        return self.clean.shape[0]

    def select(self, keep: Tensor) -> AttackInputs:
        """The sub-batch of samples where `keep` (bool, shape (B,)) is true."""
        pick = lambda t: None if t is None else t[keep]  # noqa: E731
        return AttackInputs(
            clean=self.clean[keep],
            noisy=self.noisy[keep],
            denoised=self.denoised[keep],
            index=self.index[keep],
            label=pick(self.label),
            reference=pick(self.reference),
            seed=self.seed,
        )

    def repeat(self, times: int, noisy: Tensor) -> AttackInputs:
        """The batch `times` over, draw-major (rows k·B … k·B+B−1 are copy k), each copy with
        its own noisy image from `noisy` (K·B, …): the EOT view of the sensor threat model."""
        tile = lambda t: None if t is None else torch.cat([t] * times)  # noqa: E731
        return AttackInputs(
            clean=tile(self.clean),
            noisy=noisy,
            denoised=tile(self.denoised),
            index=tile(self.index),
            label=tile(self.label),
            reference=tile(self.reference),
            seed=self.seed,
        )


@dataclass
class StepState:
    """One step's view: δ, x_n+δ, D(x_n+δ) and lazily computed, cached downstream logits.

`attacked` is D(x_n+δ), the one word for it in code (`Outcome.attacked`, the summary's
`psnr_attacked`, `acc_attacked`) and D(x_n+δ) in docs.

    Under the sensor threat model with K attack draws, every field holds K·B rows (draw-major,
    `draws` = K): the loop averages per-sample losses over the draws (`per_image`).
    """

    inputs: AttackInputs
    victim: Victim
    delta: Tensor
    perturbed: Tensor
    attacked: Tensor
    draws: int = 1
    _cache: dict[str, Tensor] = field(default_factory=dict, repr=False)

    def per_image(self, values: Tensor) -> Tensor:
        """(K·B,) per-row values → (B,) means over each image's K draws (identity for K = 1)."""
        return values if self.draws == 1 else values.view(self.draws, -1).mean(dim=0)

    def downstream_logits(self) -> Tensor:
        """Downstream model on D(x_n+δ), computed once per step whatever number of terms use it."""
        if "logits" not in self._cache:
            if self.victim.downstream is None:
                raise ValueError("this attack needs a downstream model (config `downstream`)")
            self._cache["logits"] = self.victim.downstream(self.attacked)
        return self._cache["logits"]

    def predictions(self) -> Tensor:
        """Top-1 class on D(x_n+δ) (no gradient)."""
        with torch.no_grad():
            return self.downstream_logits().argmax(dim=1)
