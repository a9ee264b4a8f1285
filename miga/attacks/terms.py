"""Loss terms an attack minimises. Each maps a `StepState` to a per-sample loss of shape (B,).

Per-sample losses (means over each image's values, never over the batch) make a sample's
update independent of the rest of its batch: results do not change with batch size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miga.attacks.state import StepState

ImageField = Literal["clean", "noisy", "denoised", "reference"]


def per_sample_mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared error of each sample (dim 0) over all its other dimensions.

    `F.mse_loss` computes (a−b)² and its gradient 2(a−b)·g each in one fused pass, and a sum
    divided by the count backpropagates g/n as a broadcast instead of a per-value division:
    the same values as `(a - b).pow(2).mean()` (torch's mean is that sum and division) at a
    third of the passes — the attack step's largest cost on a cheap victim."""
    squared = F.mse_loss(a, b, reduction="none").flatten(1)
    return squared.sum(dim=1) / squared.shape[1]


class LossTerm(nn.Module, ABC):
    """A per-sample loss of the attack's current step."""

    @abstractmethod
    def forward(self, state: StepState) -> Tensor:
        """(B,) loss to minimise."""


class _PerceptualMSE(nn.Module):
    """MSE plus `weight` × MSE of frozen features (the authors use VGG16; none by default).

    `features` returns one tensor (its MSE is the perceptual term: the authors' known task,
    VGG16's whole `features` stack) or a sequence of tensors (the per-sample MSEs of each are
    summed: the authors' unknown task, VGG16 layers 4, 9 and 16)."""

    def __init__(self, features: nn.Module | None, weight: float) -> None:
        super().__init__()
        self.features = features.requires_grad_(False).eval() if features is not None else None
        self.weight = weight

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        loss = per_sample_mse(a, b)
        if self.features is not None and self.weight:
            loss = loss + self.weight * _feature_mse(self.features(a), self.features(b))
        return loss


def _feature_mse(a: Tensor | Sequence[Tensor], b: Tensor | Sequence[Tensor]) -> Tensor:
    """Per-sample MSE of one feature tensor, or the sum over layers of a sequence of them."""
    if isinstance(a, Tensor):
        return per_sample_mse(a, b)
    return sum(per_sample_mse(x, y) for x, y in zip(a, b, strict=True))


class OutputFidelity(LossTerm):
    """L_rec: D(x_n+δ) stays close to a target (x for the known task, x_ref for the unknown)."""

    def __init__(
        self,
        target: ImageField = "clean",
        features: nn.Module | None = None,
        perceptual_weight: float = 0.1,
    ) -> None:
        super().__init__()
        self.target = target
        self.distance = _PerceptualMSE(features, perceptual_weight)

    def forward(self, state: StepState) -> Tensor:
        target = getattr(state.inputs, self.target)
        if target is None:
            raise ValueError(f"OutputFidelity target '{self.target}' is not in this batch")
        return self.distance(state.attacked, target)


class InputFidelity(LossTerm):
    """L_pert: the perturbed input x_n+δ stays close to x_n."""

    def __init__(self, features: nn.Module | None = None, perceptual_weight: float = 0.1) -> None:
        super().__init__()
        self.distance = _PerceptualMSE(features, perceptual_weight)

    def forward(self, state: StepState) -> Tensor:
        return self.distance(state.perturbed, state.inputs.noisy)


class DeltaNorm(LossTerm):
    """‖δ‖₂ of each sample (the λ_reg regulariser)."""

    def forward(self, state: StepState) -> Tensor:
        return state.delta.flatten(1).norm(dim=1)


class OutputDistortion(LossTerm):
    """−MSE(D(x_n+δ), x): minimised, it destroys the output's visual quality (PGD baseline)."""

    def forward(self, state: StepState) -> Tensor:
        return -per_sample_mse(state.attacked, state.inputs.clean)


class TaskCrossEntropy(LossTerm):
    """Known-task term: push the downstream model's prediction on D(x_n+δ) away from the true label.

    `form="ce"` is the paper's −CE; `form="prob_mse"` the authors' code, −MSE(softmax, one-hot).
    With `target_class` set the attack is targeted: it minimises CE to that class instead.
    """

    def __init__(
        self, form: Literal["ce", "prob_mse"] = "ce", target_class: int | None = None
    ) -> None:
        super().__init__()
        if form not in ("ce", "prob_mse"):
            raise ValueError(f"TaskCrossEntropy form must be 'ce' or 'prob_mse', got '{form}'")
        self.form = form
        self.target_class = target_class

    def forward(self, state: StepState) -> Tensor:
        logits = state.downstream_logits()
        if self.target_class is not None:
            target = torch.full_like(state.inputs.label, self.target_class)
            return F.cross_entropy(logits, target, reduction="none")
        label = state.inputs.label
        if label is None:
            raise ValueError("the known-task term needs labels: this dataset has none")
        if self.form == "ce":
            return -F.cross_entropy(logits, label, reduction="none")
        one_hot = F.one_hot(label, logits.shape[1]).to(logits.dtype)
        return -per_sample_mse(logits.softmax(dim=1), one_hot)
