"""Loss terms an attack minimises. Each maps a `StepState` to a per-sample loss of shape (B,).

Per-sample losses (means over each image's values, never over the batch) make a sample's
update independent of the rest of its batch: results do not change with batch size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

from torch import Tensor, nn

from miga.attacks.state import StepState
from miga.mi.cross_entropy import check_form, task_cross_entropy
from miga.utils.losses import per_sample_mse

ImageField = Literal["clean", "noisy", "denoised", "reference"]


class LossTerm(nn.Module, ABC):
    """A per-sample loss of the attack's current step."""

    @abstractmethod
    def forward(self, state: StepState) -> Tensor:
        """(B,) loss to minimise."""


class _PerceptualMSE(nn.Module):
    """MSE plus `weight` × MSE of frozen features (the authors use VGG16; none by default)."""

    def __init__(self, features: nn.Module | None, weight: float) -> None:
        super().__init__()
        self.features = features.requires_grad_(False).eval() if features is not None else None
        self.weight = weight

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        loss = per_sample_mse(a, b)
        if self.features is not None and self.weight:
            loss = loss + self.weight * per_sample_mse(self.features(a), self.features(b))
        return loss


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
        return self.distance(state.output, target)


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
        return -per_sample_mse(state.output, state.inputs.clean)


class TaskCrossEntropy(LossTerm):
    """Known-task term: push the task model's prediction on D(x_n+δ) away from the true label.

    `form="ce"` is the paper's −CE; `form="prob_mse"` the authors' code, −MSE(softmax, one-hot).
    With `target_class` set the attack is targeted: it minimises CE to that class instead.
    """

    def __init__(
        self, form: Literal["ce", "prob_mse"] = "ce", target_class: int | None = None
    ) -> None:
        super().__init__()
        self.form = check_form(form, "TaskCrossEntropy form")
        self.target_class = target_class

    def forward(self, state: StepState) -> Tensor:
        return task_cross_entropy(
            state.downstream_logits(), state.inputs.label, self.form, self.target_class
        )
