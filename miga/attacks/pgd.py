"""PGD maximising the denoiser's output error: the "visual clarity" attack, L∞ and L2.

Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models Resistant to
Adversarial Attacks", ICLR 2018, arXiv 1706.06083 (projected gradient descent from a random
start). Aimed at a denoiser, its goal is the output's distance to the clean image, not a
classifier's loss (as in Ning et al. 2023, arXiv 2306.16050, and Yan et al. 2022, arXiv
2201.04397).

Step rule, from a random start δ₀ in the budget:

    L∞ (`PGD`, attack=pgd):     δ ← Π_budget(δ − α·sign ∇_δ(−MSE(D(x_n+δ), x)))
    L2 (`PGDL2`, attack=pgd_l2): δ ← Π_ρ(δ − f·ρ·g/‖g‖₂),  g = ∇_δ(−MSE(D(x_n+δ), x))

ρ is the radius of the smallest L2 ball holding the shared budget, computed from each batch's
image size (`CircumscribedL2Ball`): ε·√(C·H·W) for L∞ ε.

Defaults (their one home is conf/attack/pgd.yaml and conf/attack/pgd_l2.yaml): 10 steps, random
start; L∞: α = 1/255 in the shared budget (L∞ 4/255); L2: f = 0.25.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import partial
from typing import Any

from torch import Tensor

from miga.attacks.base import Attack
from miga.attacks.budgets import Budget
from miga.attacks.denoising_budgets import CircumscribedL2Ball
from miga.attacks.optim import NormalizedGradientDescent
from miga.attacks.terms import OutputDistortion


def radius_relative_step(
    params: Iterable[Tensor], budget: CircumscribedL2Ball, fraction: float
) -> NormalizedGradientDescent:
    """L2-PGD steps of `fraction`·ρ, ρ the budget's radius for the size of the images in δ."""
    params = list(params)
    radius = budget.radius(params[0])
    if not math.isfinite(radius):
        raise ValueError("L2 steps relative to the budget's radius need a bounded budget")
    return NormalizedGradientDescent(params, lr=fraction * radius)


class PGD(Attack):
    """PGD maximising MSE(D(x_n+δ), x); the step rule is `optimizer` (sign steps for L∞).

    The published settings (steps, step sizes, random start) are required arguments: their one
    home is the YAML, so no second copy can drift.
    """

    def __init__(
        self,
        steps: int,
        optimizer: partial,
        budget: Budget,
        random_start: bool,
        **loop: Any,
    ) -> None:
        terms = {"distortion": OutputDistortion()}
        super().__init__(
            terms,
            {"distortion": 1.0},
            steps,
            optimizer,
            budget=budget,
            random_start=random_start,
            **loop,
        )


class PGDL2(PGD):
    """L2 PGD on output MSE: normalised-gradient steps of `step_fraction`·ρ, projected on ρ."""

    def __init__(
        self,
        steps: int,
        budget: CircumscribedL2Ball,
        step_fraction: float,
        random_start: bool,
        **loop: Any,
    ) -> None:
        step = partial(radius_relative_step, budget=budget, fraction=step_fraction)
        super().__init__(steps, step, budget, random_start=random_start, **loop)
