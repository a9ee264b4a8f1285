"""Optimisers for δ that torch does not ship.

With these, I-FGSM and PGD are the same loop as MIGA with another optimiser: the step rule is
an optimiser, the constraint a budget, the goal a sum of loss terms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor
from torch.optim import Optimizer


class SignGradientDescent(Optimizer):
    """δ ← δ − lr · sign(∇δ L): the (I-)FGSM / L∞-PGD step, as an optimiser."""

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        if lr <= 0:
            raise ValueError(f"step size lr must be > 0, got {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    param.add_(param.grad.sign(), alpha=-group["lr"])
        return loss


class NormalizedGradientDescent(Optimizer):
    """δ ← δ − lr · ∇/‖∇‖₂ per sample (dim 0): the L2-PGD step, as an optimiser."""

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        if lr <= 0:
            raise ValueError(f"step size lr must be > 0, got {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    norm = param.grad.flatten(1).norm(dim=1).clamp_min(1e-12)
                    shape = (-1,) + (1,) * (param.dim() - 1)
                    param.add_(param.grad / norm.view(shape), alpha=-group["lr"])
        return loss
