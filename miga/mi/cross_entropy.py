"""The known-task "estimator": the downstream model's cross-entropy.

When the downstream task is known, lowering the task-relevant information in D(x_n+δ) means
lowering what the downstream model can still read from it. Its lower bound on I(label; D(x_n+δ)) is
Barber–Agakov's H(label) − CE, so this estimator fits the common interface.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from miga.attacks.state import StepState
from miga.attacks.terms import TaskCrossEntropy
from miga.mi.base import MIEstimator


class CrossEntropyMI(MIEstimator):
    """`mi_estimator=ce`: the attack term is −CE (paper) or −MSE(softmax, one-hot) (authors)."""

    bound = "lower"

    def __init__(self, form: Literal["ce", "prob_mse"] = "ce") -> None:
        super().__init__()
        self.term = TaskCrossEntropy(form)

    def estimate(self, a: Tensor, b: Tensor) -> Tensor:
        """Barber–Agakov bound H(b) − CE(a, b) from logits `a` and labels `b`, in nats."""
        counts = torch.bincount(b, minlength=a.shape[1]).float()
        prior = counts / counts.sum()
        entropy = -(prior[prior > 0] * prior[prior > 0].log()).sum()
        return entropy - F.cross_entropy(a, b)

    def attack_loss(self, state: StepState) -> Tensor:
        return self.term(state)

    def aimed_at(self, target_class: int) -> CrossEntropyMI:
        """Targeted: the term minimises CE to `target_class` instead of pushing off the label."""
        self.term = TaskCrossEntropy(self.term.form, target_class)
        return self
