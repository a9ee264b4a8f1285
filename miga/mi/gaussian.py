"""Correlated Gaussians with a closed-form MI: the sanity check of every estimator.

a ~ N(0, I_d), b = ρ·a + √(1−ρ²)·ε with ε ~ N(0, I_d): each coordinate pair has correlation ρ and
I(a; b) = −d/2 · log(1 − ρ²) nats.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from miga.mi.base import MIEstimator


def true_mi(dim: int, rho: float) -> float:
    """I(a; b) in nats for `dim` coordinate pairs of correlation `rho`."""
    return -0.5 * dim * math.log1p(-rho * rho)


def rho_for_mi(mi: float, dim: int) -> float:
    """The correlation that gives `mi` nats over `dim` coordinates."""
    return math.sqrt(-math.expm1(-2.0 * mi / dim))


def correlated_gaussians(
    n: int, dim: int, rho: float, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """`n` pairs (a, b) of `dim`-vectors, coordinate-wise correlation `rho`."""
    a = torch.randn(n, dim, generator=generator)
    noise = torch.randn(n, dim, generator=generator)
    return a, rho * a + math.sqrt(1.0 - rho * rho) * noise


def fit_on_correlated_gaussians(
    estimator: MIEstimator,
    dim: int,
    rho: float,
    steps: int,
    batch_size: int,
    lr: float = 5e-4,
    seed: int = 0,
    eval_batches: int = 16,
    eval_batch_size: int | None = None,
    anneal: bool = True,
) -> float:
    """Train `estimator` with Adam on fresh correlated-Gaussian batches and return its mean
    estimate over `eval_batches` fresh held-out batches (eval mode, no gradients).

    Deterministic for a given `seed` and initial estimator: data come from a seeded generator,
    and torch's global RNG (shuffled marginals, dropout) is seeded inside a fork, so the caller's
    RNG state is left unchanged.
    """
    data = torch.Generator().manual_seed(seed)
    held_out = torch.Generator().manual_seed(seed + 1_000_003)
    params = [p for p in estimator.parameters() if p.requires_grad]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if params and steps > 0:
            optimizer = torch.optim.Adam(params, lr=lr)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
            estimator.train()
            for _ in range(steps):
                a, b = correlated_gaussians(batch_size, dim, rho, data)
                loss = estimator.training_loss(a, b)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if anneal:
                    schedule.step()
        estimator.eval()
        values = []
        with torch.no_grad():
            for _ in range(eval_batches):
                a, b = correlated_gaussians(eval_batch_size or batch_size, dim, rho, held_out)
                values.append(float(estimator.estimate(a, b)))
    return sum(values) / len(values)
