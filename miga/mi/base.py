"""The one interface every mutual-information estimator implements.

An estimator is used three ways: to *measure* I(a; b) on a batch (`estimate`), to *train* its
critic (`training_loss`, minimised by `miga.train_critic`), and as the MI term of an attack
(`attack_loss`, per-sample, minimised over δ). `bound` says which side of the true MI the
estimate lies on: minimising a lower bound does not prove MI fell (docs/architecture.md §6),
so reports pair a lower-bound attack with an upper-bound or held-out estimate.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Literal, Protocol

from torch import Tensor, nn


class AttackStep(Protocol):
    """What an attack term reads of one attack step (`miga.attacks.state.StepState` is one):
    described here so that estimators stay below the attack layer and never import it."""

    inputs: Any  # the batch: `.clean`, `.noisy`, `.label`, `.reference`, …
    attacked: Tensor  # D(x_n+δ)

    def downstream_logits(self) -> Tensor:
        """The downstream model's logits on `attacked`."""


class MIEstimator(nn.Module, ABC):
    """Base class: subclasses set `bound` and implement `estimate` and `training_loss`."""

    bound: Literal["lower", "upper"] = "lower"

    @abstractmethod
    def estimate(self, a: Tensor, b: Tensor) -> Tensor:
        """Scalar estimate of I(a; b) in nats from a batch of paired samples (dim 0 = pairs)."""

    def lower_bound(self, a: Tensor, b: Tensor) -> Tensor:
        """`estimate` for estimators that are lower bounds (DV, NWJ, InfoNCE, SMILE, …)."""
        if self.bound != "lower":
            raise TypeError(f"{type(self).__name__} is an {self.bound} bound, not a lower bound")
        return self.estimate(a, b)

    def training_loss(self, a: Tensor, b: Tensor) -> Tensor:
        """Scalar loss whose minimisation tightens the bound (default: −estimate)."""
        return -self.estimate(a, b)

    def prepare_for_attack(self) -> MIEstimator:
        """Make the estimator safe to attack through: no parameter of it may collect gradients
        (δ is the only thing an attack optimises). Critic estimators also refuse random weights."""
        self.requires_grad_(False)
        return self

    def attack_loss(self, state: AttackStep) -> Tensor:
        """Per-sample (B,) loss an attack minimises to lower the task-relevant MI."""
        raise TypeError(f"{type(self).__name__} cannot be used as an attack's MI term")

    def aimed_at(self, target_class: int) -> MIEstimator:
        """This estimator's attack term made targeted (`attack.target_class`): only a known
        task's has a class to aim at."""
        raise ValueError(
            f"attack.target_class={target_class} needs a known task (mi_estimator=ce); "
            f"{type(self).__name__} has no class to aim at"
        )
