"""Optimisers for δ that torch does not ship.

With these, I-FGSM and PGD are the same loop as MIGA with another optimiser: the step rule is
an optimiser, the constraint a budget, the goal a sum of loss terms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor
from torch.optim import Optimizer


class _DirectionStep(Optimizer):
    """δ ← δ − lr · direction(∇δ L): the shared step of the sign and normalised rules."""

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        if lr <= 0:
            raise ValueError(f"step size lr must be > 0, got {lr}")
        super().__init__(params, {"lr": lr})

    @staticmethod
    def direction(grad: Tensor) -> Tensor:
        return grad

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    param.add_(self.direction(param.grad), alpha=-group["lr"])
        return loss


class SignGradientDescent(_DirectionStep):
    """δ ← δ − lr · sign(∇δ L): the (I-)FGSM / L∞-PGD step, as an optimiser."""

    @staticmethod
    def direction(grad: Tensor) -> Tensor:
        return grad.sign()


class NormalizedGradientDescent(_DirectionStep):
    """δ ← δ − lr · ∇/‖∇‖₂ per sample (dim 0): the L2-PGD step, as an optimiser."""

    @staticmethod
    def direction(grad: Tensor) -> Tensor:
        norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
        return grad / norm.view((-1,) + (1,) * (grad.dim() - 1))
