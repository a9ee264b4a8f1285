"""Random noise of the budget's full norm: the floor every optimised attack must beat.

No paper of its own: the standard control of the adversarial literature (an attack that is no
better than noise of the same size found nothing). The file is `random_noise.py`, not
`random.py` like its YAML (`attack=random`, kept for users), because a module named `random`
inside the package would read as the standard library's in every import list.

Rule, no optimisation (0 steps): draw noise per sample from (seed, "random_noise", dataset
index), Gaussian or uniform in [−1, 1], scale it so its norm equals the budget's bound
(‖δ‖∞ = ε for L∞, ‖δ‖₂ = ρ for L2), then project it (x_n+δ a valid image):

    δ = Π_budget(bound · n/‖n‖),  n ~ N(0, I) or U(−1, 1)

Defaults (their one home is conf/attack/random.yaml): uniform noise, the shared budget (L∞
4/255).
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from miga.attacks.base import Attack
from miga.attacks.budgets import Budget
from miga.attacks.state import AttackInputs
from miga.utils.seeding import per_sample_rand, per_sample_randn
from miga.utils.tensors import per_sample


class RandomNoise(Attack):
    """Noise scaled to the budget's full norm, no optimisation.

    `steps` is accepted so one sweep can set `attack.steps` for every attack; it takes none
    (the rows' `steps` column says 0).
    """

    def __init__(
        self,
        budget: Budget,
        distribution: Literal["gaussian", "uniform"],
        steps: int = 0,
    ) -> None:
        if distribution not in ("gaussian", "uniform"):
            raise ValueError(
                f"attack.distribution must be gaussian or uniform, got '{distribution}'"
            )
        if budget is None or budget.epsilon == float("inf"):
            raise ValueError("random noise of the budget's norm needs a bounded budget")
        super().__init__({}, {}, steps=0, optimizer=None, budget=budget)
        self.distribution = distribution

    def initial_delta(self, inputs: AttackInputs) -> Tensor:
        shape, like = inputs.noisy.shape[1:], inputs.noisy
        if self.distribution == "gaussian":
            noise = per_sample_randn(shape, inputs.index, inputs.seed, "random_noise", like)
        else:
            noise = per_sample_rand(shape, inputs.index, inputs.seed, "random_noise", like) * 2 - 1
        size, bound = self.budget.size(noise), self.budget.bound(noise[0].numel())
        scale = per_sample(bound / size.clamp_min(1e-12), noise)
        return self.budget.project(noise * scale, inputs.noisy)
