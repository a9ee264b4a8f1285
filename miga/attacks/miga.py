"""MIGA, the Mutual Information-Guided Attack (arXiv 2503.06966), as loss terms of the loop.

    L(δ) = λ_rec · L_rec(D(x_n+δ), target) + λ_pert · L_pert(x_n+δ, x_n)
         + λ_reg · ‖δ‖₂ + λ_mi · L_mi

L_mi comes from the configured MI estimator: the downstream cross-entropy when the task is
known (`mi_estimator=ce`), a frozen neural critic against a reference image when it is not
(`mi_estimator=mine`). Defaults follow the authors' code (docs/architecture.md §2).
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
