"""The known-task "estimator": the downstream model's cross-entropy.

When the downstream task is known, lowering the task-relevant information in D(x_n+δ) means
lowering what the downstream model can still read from it. Its lower bound on I(label; D(x_n+δ)) is
Barber–Agakov's H(label) − CE, so this estimator fits the common interface.

`task_cross_entropy` is the per-sample term itself, shared with the attacks' `TaskCrossEntropy`
(I-FGSM's loss): it lives here, below the attacks, so that this package never imports them.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from miga.mi.base import AttackStep, MIEstimator
from miga.utils.losses import per_sample_mse

Form = Literal["ce", "prob_mse"]


def task_cross_entropy(
    logits: Tensor, label: Tensor | None, form: Form = "ce", target_class: int | None = None
) -> Tensor:
    """(B,) loss that pushes the prediction off `label`: −CE (`form="ce"`, the paper) or
    −MSE(softmax, one-hot) (`"prob_mse"`, the authors' code); with `target_class`, CE to that
    class instead (targeted)."""
    if target_class is not None:
        target = torch.full((logits.shape[0],), target_class, device=logits.device)
        return F.cross_entropy(logits, target, reduction="none")
    if label is None:
        raise ValueError("the known-task term needs labels: this dataset has none")
    if form == "ce":
        return -F.cross_entropy(logits, label, reduction="none")
    one_hot = F.one_hot(label, logits.shape[1]).to(logits.dtype)
    return -per_sample_mse(logits.softmax(dim=1), one_hot)


def check_form(form: str, key: str) -> Form:
    """`form` if it is one the term knows, else an error naming the config key."""
    if form not in ("ce", "prob_mse"):
        raise ValueError(f"{key} must be 'ce' or 'prob_mse', got '{form}'")
    return form  # type: ignore[return-value]


class CrossEntropyMI(MIEstimator):
    """`mi_estimator=ce`: the attack term is −CE (paper) or −MSE(softmax, one-hot) (authors)."""

    bound = "lower"

    def __init__(self, form: Form = "ce", target_class: int | None = None) -> None:
        super().__init__()
        self.form = check_form(form, "mi_estimator.form")
        self.target_class = target_class

    def estimate(self, a: Tensor, b: Tensor) -> Tensor:
        """Barber–Agakov bound H(b) − CE(a, b) from logits `a` and labels `b`, in nats."""
        counts = torch.bincount(b, minlength=a.shape[1]).float()
        prior = counts / counts.sum()
        entropy = -(prior[prior > 0] * prior[prior > 0].log()).sum()
        return entropy - F.cross_entropy(a, b)

    def attack_loss(self, state: AttackStep) -> Tensor:
        return task_cross_entropy(
            state.downstream_logits(), state.inputs.label, self.form, self.target_class
        )

    def aimed_at(self, target_class: int) -> CrossEntropyMI:
        """Targeted: the term minimises CE to `target_class` instead of pushing off the label."""
        self.target_class = target_class
        return self
