"""MIGA, the Mutual Information-Guided Attack, as loss terms of the loop.

Li, Chen, Yu, Dong, Jiang, Tang & Yuan, "MIGA: Mutual Information-Guided Attack on Denoising
Models for Semantic Manipulation", 2025, arXiv 2503.06966. The project is named after it; the
attack is the class `MIGA` (`attack=miga`, docs/architecture.md "Config words are code words").

Step rule: Adam on δ (StepLR), projected on the budget after every step, minimising

    L(δ) = λ_rec · L_rec(D(x_n+δ), target) + λ_pert · L_pert(x_n+δ, x_n)
         + λ_reg · ‖δ‖₂ + λ_mi · L_mi

L_mi comes from the configured MI estimator: the downstream cross-entropy when the task is
known (`mi_estimator=ce`), a frozen neural critic against a reference image when it is not
(`mi_estimator=mine`).

Defaults (their one home is conf/attack/miga.yaml; the unknown task conf/attack/miga_unknown.yaml,
the authors' scripts miga_authors.yaml / miga_unknown_authors.yaml; docs/architecture.md §2):
known task λ_rec 1, λ_pert 3, λ_reg 1e-4, λ_mi 10, Adam lr 0.1, StepLR(30, 0.5), L∞ 4/255,
δ₀ = 0; unknown task λ_mi 0.01, lr 0.04, 100 steps, gradient-norm clip 1.0.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from torch import Tensor, nn

from miga.attacks.base import Attack
from miga.attacks.state import StepState
from miga.attacks.terms import DeltaNorm, ImageField, InputFidelity, LossTerm, OutputFidelity
from miga.mi.base import MIEstimator


class MITerm(LossTerm):
    """The MI term: whatever per-sample loss the estimator offers to lower I(x; D(x_n+δ))."""

    def __init__(self, estimator: MIEstimator) -> None:
        super().__init__()
        self.estimator = estimator.prepare_for_attack()

    def forward(self, state: StepState) -> Tensor:
        return self.estimator.attack_loss(state)


class MIGA(Attack):
    """MIGA with the paper's three terms; every other argument goes to the attack loop.

    `target_class` makes it targeted (the attack's choice, `attack.target_class`): the MI term
    then pulls the downstream model towards that class (a known task only).

    The paper's weights have one home, conf/attack/miga.yaml (and miga_unknown.yaml): they are
    required here, so no second copy of them can drift."""

    def __init__(
        self,
        mi_estimator: MIEstimator,
        steps: int,
        optimizer: partial,
        *,
        lambda_rec: float,
        lambda_pert: float,
        lambda_reg: float,
        lambda_mi: float,
        rec_target: ImageField,
        perceptual_weight: float,
        features: nn.Module | None = None,
        target_class: int | None = None,
        **loop: Any,
    ) -> None:
        if isinstance(steps, int) and steps < 1:
            raise ValueError(f"MIGA needs attack.steps >= 1, got {steps} (attack=none: no attack)")
        terms = {
            "rec": OutputFidelity(rec_target, features, perceptual_weight),
            "pert": InputFidelity(features, perceptual_weight),
            "reg": DeltaNorm(),
            "mi": MITerm(
                mi_estimator if target_class is None else mi_estimator.aimed_at(target_class)
            ),
        }
        weights = {"rec": lambda_rec, "pert": lambda_pert, "reg": lambda_reg, "mi": lambda_mi}
        super().__init__(terms, weights, steps, optimizer, **loop)
