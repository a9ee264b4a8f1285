"""The critic's own view of an unknown-task attack: did T(D(x_n+δ), x_ref) rise?

`CriticScore` scores D(x_n) and D(x_n+δ) against the reference with a (frozen) critic
estimator, normally the same `mi_estimator` the attack used (its own copy, loaded from the same
checkpoint). Columns: `critic_denoised` = T(D(x_n), x_ref), `critic_attacked` =
T(D(x_n+δ), x_ref); none when the dataset has no references.
"""

from __future__ import annotations

import torch

from miga.metrics.scorers import Columns, Outcome, Scorer
from miga.mi.estimators import CriticEstimator


class CriticScore(Scorer):
    """Per-image critic scores of the denoised and attacked outputs against the reference."""

    def __init__(self, estimator: CriticEstimator) -> None:
        self.estimator = estimator.freeze()

    @torch.no_grad()
    def __call__(self, o: Outcome) -> Columns:
        if o.reference is None:
            return {}
        estimator = self.estimator.to(o.clean.device)
        return {
            "critic_denoised": estimator.scores(o.denoised, o.reference).double(),
            "critic_attacked": estimator.scores(o.attacked, o.reference).double(),
        }
