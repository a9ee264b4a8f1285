"""Loss terms an attack minimises. Each maps a `StepState` to a per-sample loss of shape (B,).

Per-sample losses (means over each image's values, never over the batch) make a sample's
update independent of the rest of its batch: results do not change with batch size.
"""

from __future__ import annotations

import weakref
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

import torch
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
        self.form = check_form(form, "TaskCrossEntropy form")
        self.target_class = target_class

    def forward(self, state: StepState) -> Tensor:
        return task_cross_entropy(
            state.downstream_logits(), state.inputs.label, self.form, self.target_class
        )


class DifferenceOfLogitsRatio(LossTerm):
    """−DLR of the task model on D(x_n+δ) (Croce & Hein 2020, arXiv 2003.01690, §4), minimised.

    DLR is shift- and scale-invariant in the logits z, so a saturated softmax (which flattens
    CE's gradient) does not hide the direction to another class:

    - untargeted: DLR = −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12);
    - targeted at t (APGD-T): DLR = −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12),

    π the logits sorted in decreasing order. DLR > 0 exactly when the label is no longer the
    top class (targeted: when z_t > z_y), so the sample with the highest DLR is broken if any
    was. The target is `target_class` (a fixed class: `attack.target_class`) if given, else
    the `target_rank`-th most likely class of the task model on D(x_n) (APGD-T's scheme:
    rank 2 is the runner-up; torchattacks' APGDT takes the ranks 2 … n_classes in turn, each
    on the images still unbroken — here one rank per attack, further ranks are further
    members of an ensemble). Neither: untargeted. Both: the fixed class wins.
    The logit ranks on D(x_n) are computed once per batch (cached for the batch's inputs).
    """

    def __init__(self, target_class: int | None = None, target_rank: int | None = None) -> None:
        super().__init__()
        if target_rank is not None and target_rank < 2:
            raise ValueError(
                f"DLR target_rank must be >= 2 (rank 1 is the predicted class), got {target_rank}"
            )
        self.target_class = target_class
        self.target_rank = target_rank
        self._targets: tuple[weakref.ref, Tensor] | None = None

    def forward(self, state: StepState) -> Tensor:
        logits = state.downstream_logits()
        label = state.inputs.label
        if label is None:
            raise ValueError("the DLR term needs labels: this dataset has none")
        ranked = logits.sort(dim=1, descending=True).values
        true = logits.gather(1, label[:, None]).squeeze(1)
        target = self._target(state)
        if target is None:
            top_is_label = logits.argmax(dim=1) == label
            other = torch.where(top_is_label, ranked[:, 1], ranked[:, 0])
            return (true - other) / (ranked[:, 0] - ranked[:, 2] + 1e-12)
        aimed = logits.gather(1, target[:, None]).squeeze(1)
        scale = ranked[:, 0] - 0.5 * ranked[:, 2] - 0.5 * ranked[:, 3] + 1e-12
        return (true - aimed) / scale

    def _target(self, state: StepState) -> Tensor | None:
        """(B,) target classes, or None for the untargeted DLR."""
        inputs = state.inputs
        if self.target_class is not None:
            return torch.full_like(inputs.label, self.target_class)
        if self.target_rank is None:
            return None
        if self._targets is None or self._targets[0]() is not inputs:
            with torch.no_grad():
                clean_logits = state.victim.downstream(inputs.denoised)
            order = clean_logits.sort(dim=1, descending=True).indices
            self._targets = (weakref.ref(inputs), order[:, self.target_rank - 1])
        return self._targets[1]
