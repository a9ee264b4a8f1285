"""denoising-PGD: L2 PGD on the denoiser's output whose perturbed noise stays Gaussian-like.

Ning, Sun, Li & Guo, "Evaluating Similitude and Robustness of Deep Image Denoising Models via
Adversarial Attack", 2023, arXiv 2306.16050. The attacker may only add noise that could pass
for the sensor's own: small in L2, zero mean per colour channel, bounded per value relative to σ.

Step rule, from a random start in the set (g = ∇_δ(−MSE(D(x_n+δ), x))):

    δ ← Π_G(δ − f·ρ·g/‖g‖₂),
    G = {δ : ‖δ‖₂ ≤ ρ, mean_c δ = 0 per channel c, |δ| ≤ cap·σ/255, x_n+δ ∈ [0,1]}

ρ the radius of the smallest L2 ball holding the shared budget (`GaussianLikeL2Ball`, whose
docstring defines the projection exactly).

Defaults (their one home is conf/attack/denoising_pgd.yaml): 10 steps, f = 0.25, random start,
cap = 0.5 σ, σ = the cell's noise level.
"""

from __future__ import annotations

from typing import Any

from miga.attacks.denoising_budgets import GaussianLikeL2Ball
from miga.attacks.pgd import PGDL2


class DenoisingPGD(PGDL2):
    """denoising-PGD: `PGDL2` on the Gaussian-like set (`GaussianLikeL2Ball`)."""

    def __init__(
        self,
        budget: GaussianLikeL2Ball,
        steps: int,
        step_fraction: float,
        random_start: bool,
        **loop: Any,
    ) -> None:
        super().__init__(steps, budget, step_fraction, random_start=random_start, **loop)
