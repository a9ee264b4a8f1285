"""What adversarial fine-tuning minimises, given D(x_n), D(x_n+δ*) and the clean x.

One class per objective (the `objective` config group); each returns its total loss and its
named parts, which the training module logs. δ* is made by the configured `attack` before the
objective runs and reaches it only through D(x_n+δ*): no objective sees how δ* was found.

- `HAT`: hybrid adversarial training, Yan et al., "Towards Adversarially Robust Deep Image
  Denoising", IJCAI 2022 (arXiv 2201.04397), the paper's objective

      L = 1/(1+α) · [ ‖D(x_n) − x‖² + α · ‖D(x_n + δ*) − x‖² ],   δ* = ObsAtk(x_n)

  (clean-noisy pairs keep reconstruction quality, adversarial ones make D locally smooth around
  them), with mean squared error per value; α = 1 by default (`conf/objective/hat.yaml`).
- `SemanticConsistency`: the defense the MIGA paper's reviewers asked for, the same pairs plus
  the downstream term on the attacked output

      L = ‖D(x_n) − x‖² + λ_adv · ‖D(x_n+δ*) − x‖² + λ_sem · CE(f(D(x_n+δ*)), y),   δ* = MIGA(x_n)

  where f is the configured `downstream` classifier (the one trained against: any other
  classifier may judge the result) and y its *pseudo-label* f(x) on the clean crop: the
  training photos need no annotation, and the denoiser learns to keep whatever f saw in x.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch.nn.functional as F
from torch import Tensor, nn


class Objective(nn.Module, ABC):
    """Loss of a batch from D(x_n), D(x_n+δ*), x and (when `uses_labels`) f's logits on
    D(x_n+δ*) with the labels."""

    #: Whether the objective needs the downstream classifier (pseudo-labels and its logits).
    uses_labels: bool = False

    @abstractmethod
    def forward(
        self,
        denoised: Tensor,
        attacked: Tensor,
        clean: Tensor,
        logits: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """(the total loss, its named parts for the logger)."""


class HAT(Objective):
    """Hybrid adversarial training (Yan et al. 2022): a convex mix of the MSE on clean-noisy
    and on adversarial-noisy inputs, α the weight of the adversarial part."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        if alpha < 0:
            raise ValueError(f"objective.alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, denoised, attacked, clean, logits=None, labels=None):  # noqa: ANN001, ANN201
        natural = F.mse_loss(denoised, clean)
        adversarial = F.mse_loss(attacked, clean)
        total = (natural + self.alpha * adversarial) / (1.0 + self.alpha)
        return total, {"mse_clean": natural, "mse_adv": adversarial}


class SemanticConsistency(Objective):
    """MSE on clean-noisy pairs + λ_adv·MSE on attacked pairs + λ_sem·CE of the downstream
    classifier on D(x_n+δ*) against its label for x."""

    uses_labels = True

    def __init__(self, lambda_adv: float = 1.0, lambda_sem: float = 0.001) -> None:
        super().__init__()
        if lambda_adv < 0 or lambda_sem < 0:
            raise ValueError(
                f"objective.lambda_adv and lambda_sem must be >= 0, got {lambda_adv}, {lambda_sem}"
            )
        self.lambda_adv = float(lambda_adv)
        self.lambda_sem = float(lambda_sem)

    def forward(self, denoised, attacked, clean, logits=None, labels=None):  # noqa: ANN001, ANN201
        if logits is None or labels is None:
            raise ValueError("objective=semantic needs a downstream classifier (`downstream=`)")
        natural = F.mse_loss(denoised, clean)
        adversarial = F.mse_loss(attacked, clean)
        semantic = F.cross_entropy(logits, labels)
        total = natural + self.lambda_adv * adversarial + self.lambda_sem * semantic
        return total, {"mse_clean": natural, "mse_adv": adversarial, "ce_adv": semantic}
