"""Critic scores of an unknown-task attack: did T(D(x_n+δ), x_ref) rise?

`CriticScore` scores D(x_n) and D(x_n+δ) against the reference with a frozen critic estimator.
Two instances run in a critic cell, and their column prefixes keep them apart:

- `attack_critic_*`: the cell's own `mi_estimator` (its own copy, same checkpoint) — the very
  quantity the attack maximised, so it says the optimiser worked, not that semantics moved;
- `heldout_critic_*`: a critic the attack never saw (another seed, another split of the pairs,
  trained by `miga.train_critic`), the judge of the cell (`metrics.heldout_critic`).

Columns `<prefix>_denoised` = T(D(x_n), x_ref), `<prefix>_attacked` = T(D(x_n+δ), x_ref); none
when the dataset has no references.
"""

from __future__ import annotations

import torch

from miga.metrics.scorers import Columns, Outcome, Scorer
from miga.mi.estimators import CriticEstimator


class CriticScore(Scorer):
    """Per-image critic scores of the denoised and attacked outputs against the reference."""

    def __init__(self, estimator: CriticEstimator, prefix: str = "attack_critic") -> None:
        self.estimator = estimator.freeze()
        self.prefix = prefix

    @torch.no_grad()
    def __call__(self, o: Outcome) -> Columns:
        if o.reference is None:
            return {}
        estimator = self.estimator.to(o.clean.device)
        return {
            f"{self.prefix}_denoised": estimator.scores(o.denoised, o.reference).double(),
            f"{self.prefix}_attacked": estimator.scores(o.attacked, o.reference).double(),
        }
