"""ObsAtk: the observation-based zero-mean attack on image denoisers.

Yan, Zhang, Feng, Sugiyama & Tan, "Towards Adversarially Robust Deep Image Denoising", IJCAI
2022, arXiv 2201.04397. L2 PGD on the denoiser's output error whose perturbation has zero mean,
so it looks like noise rather than a brightness or colour shift.

Step rule, from δ₀ = 0 (g = ∇_δ(−MSE(D(x_n+δ), x))):

    δ ← Π_{ZeroMean, ρ}(δ − f·ρ·g/‖g‖₂),   ρ = ε·√(#values)

with ε the shared budget's (their "ε/255" is ε in 8-bit units) and ρ computed from each image's
size; the zero-mean constraint is part of the projection (`ZeroMeanL2Ball`).

Defaults (their one home is conf/attack/obsatk.yaml): 5 steps, f = 0.3, no random start, ε
from the shared budget (L∞ 4/255).
"""

from __future__ import annotations

from typing import Any

from miga.attacks.denoising_budgets import ZeroMeanL2Ball
from miga.attacks.pgd import PGDL2


class ObsAtk(PGDL2):
    """ObsAtk: `PGDL2` on the zero-mean L2 ball (`ZeroMeanL2Ball`)."""

    def __init__(
        self,
        budget: ZeroMeanL2Ball,
        steps: int,
        step_fraction: float,
        random_start: bool,
        **loop: Any,
    ) -> None:
        super().__init__(steps, budget, step_fraction, random_start=random_start, **loop)
