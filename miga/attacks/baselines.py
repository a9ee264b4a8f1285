"""The baselines MIGA is compared with, as short subclasses of the one attack loop.

Each differs from MIGA only in its loss terms, its step rule (optimiser) and its budget; the
budget is the experiment's shared `budget` config block by default, so every attack of a
comparison runs at equal budget (conf/budget, conf/experiment/baselines.yaml).

| attack          | goal (loss minimised)       | step                    | budget              |
|-----------------|-----------------------------|-------------------------|---------------------|
| `ifgsm`         | −CE of f on D(x_n+δ)        | sign, α                 | shared (L∞)         |
| `pgd`           | −MSE(D(x_n+δ), x)           | sign, α, random start   | shared (L∞)         |
| `pgd_l2`        | −MSE(D(x_n+δ), x)           | L2-normalised, f·ρ      | L2 ball around it   |
| `obsatk`        | −MSE(D(x_n+δ), x)           | L2-normalised, 0.3ρ, 5× | zero-mean L2, ρ     |
| `denoising_pgd` | −MSE(D(x_n+δ), x)           | L2-normalised, f·ρ      | Gaussian-like L2, ρ |
| `random`        | none: noise of full norm    | none (0 steps)          | shared              |
| `none`          | none: δ = 0                 | none (0 steps)          | none                |
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import partial
from typing import Any, Literal

from torch import Tensor

from miga.attacks.base import Attack
from miga.attacks.budgets import Budget
from miga.attacks.denoising_budgets import (
    CircumscribedL2Ball,
    GaussianLikeL2Ball,
    ZeroMeanL2Ball,
)
from miga.attacks.optim import NormalizedGradientDescent
from miga.attacks.state import AttackInputs
from miga.attacks.terms import OutputDistortion, TaskCrossEntropy
from miga.utils.seeding import per_sample_rand, per_sample_randn


def radius_relative_step(
    params: Iterable[Tensor], budget: CircumscribedL2Ball, fraction: float
) -> NormalizedGradientDescent:
    """L2-PGD steps of `fraction`·ρ, ρ the budget's radius for the size of the images in δ."""
    params = list(params)
    radius = budget.radius(params[0])
    if not math.isfinite(radius):
        raise ValueError("L2 steps relative to the budget's radius need a bounded budget")
    return NormalizedGradientDescent(params, lr=fraction * radius)


class IFGSM(Attack):
    """I-FGSM on the downstream loss through the denoiser (the paper's main baseline).

    δ ← Π_ε(δ − α·sign ∇_δ(−CE(f(D(x_n+δ)), y))) from δ₀ = 0; with `target_class` it descends
    CE to that class instead. `optimizer` is the sign step (SignGradientDescent, lr = α).
    """

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


class PGD(Attack):
    """PGD maximising MSE(D(x_n+δ), x): the "visual clarity" attack, from a random start.

    The step rule comes from `optimizer`: sign steps (L∞ PGD) or normalised steps (`PGDL2`).
    The baselines' published settings (steps, step fractions, random start) have one home, their
    conf/attack/ YAML: they are required arguments here.
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


class ObsAtk(PGDL2):
    """ObsAtk (Yan et al. 2022): zero-mean L2 PGD, ρ = ε·√(#values), 5 steps of 0.3ρ from 0.

    The zero-mean constraint is part of the projection (`ZeroMeanL2Ball`).
    """

    def __init__(
        self,
        budget: ZeroMeanL2Ball,
        steps: int,
        step_fraction: float,
        random_start: bool,
        **loop: Any,
    ) -> None:
        super().__init__(steps, budget, step_fraction, random_start=random_start, **loop)


class DenoisingPGD(PGDL2):
    """denoising-PGD-style L2 PGD whose perturbed noise stays Gaussian-like.

    The constraint set is `GaussianLikeL2Ball`: ‖δ‖₂ ≤ ρ, zero mean per colour channel,
    |δ| ≤ cap·σ/255 per value, x_n+δ ∈ [0,1] (see its docstring for the exact definition).
    """

    def __init__(
        self,
        budget: GaussianLikeL2Ball,
        steps: int,
        step_fraction: float,
        random_start: bool,
        **loop: Any,
    ) -> None:
        super().__init__(steps, budget, step_fraction, random_start=random_start, **loop)


class RandomNoise(Attack):
    """Random noise of the budget's full norm: ‖δ‖ = ε in the budget's norm, no optimisation.

    Gaussian or uniform noise drawn per sample from (seed, index), scaled so its norm equals
    the budget's bound (‖δ‖∞ = ε for L∞, ‖δ‖₂ = ρ for L2), then projected (valid image).
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
            raise ValueError(f"distribution must be gaussian or uniform, got '{distribution}'")
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
        scale = (bound / size.clamp_min(1e-12)).view(-1, *([1] * (noise.dim() - 1)))
        return self.budget.project(noise * scale, inputs.noisy)


class NoAttack(Attack):
    """δ = 0: the reference row of every comparison (what the denoiser does unattacked).

    `steps` is accepted (and ignored) like `RandomNoise`'s, for sweeps over attacks.
    """

    def __init__(self, steps: int = 0) -> None:
        super().__init__({}, {}, steps=0, optimizer=None)
