"""I-FGSM on the downstream loss through the denoiser: the paper's main baseline.

Kurakin, Goodfellow & Bengio, "Adversarial examples in the physical world", ICLR workshop 2017,
arXiv 1607.02533 (the iterative FGSM, "BIM" in torchattacks). Here the model it attacks is the
whole pipeline f(D(T(x_n+δ))): the gradient goes through the downstream model f, the denoiser D
and the defense T's differentiable or BPDA form.

Step rule, from δ₀ = 0:

    δ ← Π_budget(δ − α·sign ∇_δ(−CE(f(D(x_n+δ)), y)))

and with `target_class` t it descends CE(f(D(x_n+δ)), t) instead (targeted).

Defaults (their one home is conf/attack/ifgsm.yaml): 10 steps, α = 1/255 (`optimizer`:
`SignGradientDescent`, lr = α), the experiment's shared budget (L∞ 4/255), untargeted.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from miga.attacks.base import Attack
from miga.attacks.budgets import Budget
from miga.attacks.terms import TaskCrossEntropy


class IFGSM(Attack):
    """I-FGSM: sign steps on −CE of the downstream model on D(x_n+δ); every other argument
    (`grad_clip`, `random_start`, `stopping`, …) goes to the attack loop."""

    def __init__(
        self,
        steps: int,
        optimizer: partial,
        budget: Budget,
        target_class: int | None = None,
        **loop: Any,
    ) -> None:
        terms = {"task": TaskCrossEntropy("ce", target_class)}
        super().__init__(terms, {"task": 1.0}, steps, optimizer, budget=budget, **loop)
