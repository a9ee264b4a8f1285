"""APGD: Auto-PGD with its parameter-free step-size schedule, in the one attack loop.

Paper: F. Croce, M. Hein, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", ICML 2020 (arXiv 2003.01690), Algorithm 1; reference code
fra31/auto-attack, and torchattacks 3.5.1's `APGD` / `APGDT`, which this file equals on the same
composite f∘D (tests/test_apgd.py).

Step rule (maximising the loss L; the loop minimises −L, the same thing):

    z        = P(x_k + η_k · sign ∇L(x_k))                       (L2: ∇/‖∇‖₂)
    x_{k+1}  = P(x_k + α(z − x_k) + (1 − α)(x_k − x_{k−1}))        α = 1 at k = 0, else 0.75

P the budget's projection (ε-ball ∩ valid images). η_0 = 2ε. At the checkpoints
w_0 = 0, w_1 = ⌊0.22·N⌋, then windows shrinking by ⌊0.03·N⌋ down to ⌊0.06·N⌋ (each at least 1:
p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06) in the integer form torchattacks uses), a
sample's η is halved and its iterate (and gradient) reset to its best point so far when

1. its loss rose on at most ρ = 0.75 of the steps since the last checkpoint, or
2. its η was not halved at the last checkpoint and its best loss has not risen since.

As in torchattacks and the reference code, the first checkpoint's count compares the first
step's loss with 0 (the loss history's unwritten last row), not with the start's loss.
The attack returns each sample's best point (highest loss) — the paper's x_max, torchattacks'
`perturb(best_loss=True)`. With DLR (or targeted DLR) losses it is a broken point whenever
any iterate was (DLR > 0 ⇔ misclassified); torchattacks' `forward` instead returns the last
misclassified iterate of a broken sample and the unattacked input of an unbroken one.

Every per-sample quantity (η, best loss, best point and gradient, the rise counter, condition
2's memory) is a tensor updated with `torch.where`; the checkpoint positions are the same for
every sample and known in advance, so the step never reads the device.

Defaults (conf/attack/apgd_ce.yaml, conf/attack/apgd_dlr.yaml, conf/attack/apgd_t.yaml):
N = 100 iterations (the paper's; torchattacks' default is 10), ρ = 0.75, α = 0.75, a random
start with ‖δ₀‖∞ = ε (uniform, scaled so its largest value is ε, as torchattacks does; L2: a
Gaussian direction at radius ε), one restart. `attack.steps` = N costs N + 1 forward/backward passes (the start's
gradient comes first); the rows' `steps` column counts them. A restart is another attack with
another `restart` number (another per-sample random start): an ensemble member.

`loss` picks the objective (`_partial_` term, given `target_class`): APGD-CE
(`TaskCrossEntropy`), APGD-DLR (`DifferenceOfLogitsRatio`), APGD-T (`DifferenceOfLogitsRatio`
with `target_rank`, or a fixed `attack.target_class`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from miga.attacks.base import Attack
from miga.attacks.budgets import Budget, L2Ball, LinfBall
from miga.attacks.state import AttackInputs
from miga.attacks.terms import LossTerm
from miga.utils.seeding import per_sample_rand, per_sample_randn


def checkpoint_windows(iterations: int) -> tuple[int, int, int]:
    """(first window, smallest window, shrink per checkpoint) in steps, torchattacks' integer
    form of the paper's p_1 = 0.22, minimum 0.06, shrink 0.03 (each at least one step)."""
    return (
        max(int(0.22 * iterations), 1),
        max(int(0.06 * iterations), 1),
        max(int(0.03 * iterations), 1),
    )


class APGDStep(Optimizer):
    """APGD's step rule for one batch's δ, as an optimiser minimising the loop's objective.

    `observe(loss)` must precede every `step()` with each sample's objective at the current δ
    (the loop's `Attack.observe`). Step k = 0 … N−1 moves δ; step N (the loop runs N + 1) writes
    each sample's best δ, the attack's answer. Per-sample state lives in tensors: no host read.

    Args:
        params: [δ], (B, …).
        project: the batch's projection onto the budget (δ ↦ P(δ)).
        epsilon: the budget's ε; η_0 = 2ε.
        iterations: N.
        norm: "linf" (sign steps) or "l2" (normalised steps).
        rho: condition 1's fraction of rising steps.
        momentum: α after the first step.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        project: Callable[[Tensor], Tensor],
        epsilon: float,
        iterations: int,
        norm: str = "linf",
        rho: float = 0.75,
        momentum: float = 0.75,
    ) -> None:
        super().__init__(params, {})
        (delta,) = self.param_groups[0]["params"]
        self.delta, self.project = delta, project
        self.epsilon, self.iterations, self.norm = epsilon, iterations, norm
        self.rho, self.momentum = rho, momentum
        self.window, self.window_min, self.shrink = checkpoint_windows(iterations)
        self.k = 0  # steps taken
        self.since_check = 0
        self.loss: Tensor | None = None

    def observe(self, loss: Tensor) -> None:
        """Each sample's objective (B,) at the current δ (lower is better)."""
        self.loss = loss

    def _view(self, mask: Tensor) -> Tensor:
        return mask.view(-1, *([1] * (self.delta.dim() - 1)))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> None:  # noqa: ARG002
        if self.loss is None:
            raise RuntimeError("APGDStep.step() needs observe(loss) first (the attack loop's)")
        delta, loss, grad = self.delta, self.loss, self.delta.grad
        if self.k == 0:
            self.best_loss = loss.clone()
            self.best_delta = delta.clone()
            self.best_grad = grad.clone()
            self.eta = torch.full_like(loss, 2 * self.epsilon)
            self.previous = delta.clone()
            self.last_loss = torch.zeros_like(loss)  # torchattacks' first comparison: with 0
            self.rises = torch.zeros_like(loss)
            self.check_best = loss.clone()
            self.halved = torch.ones_like(loss, dtype=torch.bool)
        else:
            improved = loss < self.best_loss
            self.best_loss = torch.where(improved, loss, self.best_loss)
            self.best_delta = torch.where(self._view(improved), delta, self.best_delta)
            self.best_grad = torch.where(self._view(improved), grad, self.best_grad)
            self.rises += (loss < self.last_loss).to(loss.dtype)
            self.last_loss = loss
            self.since_check += 1
            if self.since_check == self.window:
                self._checkpoint(delta, grad)
        if self.k == self.iterations:  # the loop's last call: answer with the best point
            delta.copy_(self.best_delta)
        else:
            self._move(delta, grad)
        self.k += 1
        self.loss = None

    def _checkpoint(self, delta: Tensor, grad: Tensor) -> None:
        """Halve η and go back to the best point where the loss stalled (conditions 1, 2)."""
        oscillating = self.rises <= self.window * self.rho
        stalled = ~self.halved & (self.check_best <= self.best_loss)
        halve = oscillating | stalled
        self.halved = halve
        self.check_best = self.best_loss.clone()
        self.eta = torch.where(halve, self.eta / 2, self.eta)
        delta.copy_(torch.where(self._view(halve), self.best_delta, delta))
        grad.copy_(torch.where(self._view(halve), self.best_grad, grad))
        self.rises.zero_()
        self.since_check = 0
        self.window = max(self.window - self.shrink, self.window_min)

    def _move(self, delta: Tensor, grad: Tensor) -> None:
        """z = P(δ − η·dir(∇)), δ' = P(δ + α(z − δ) + (1 − α)(δ − δ_prev))."""
        if self.norm == "linf":
            direction = grad.sign()
        else:
            norm = grad.pow(2).flatten(1).sum(dim=1).sqrt() + 1e-12
            direction = grad / self._view(norm)
        alpha = 1.0 if self.k == 0 else self.momentum
        momentum = delta - self.previous
        self.previous = delta.clone()
        z = self.project(delta - self._view(self.eta) * direction)
        delta.copy_(self.project(delta + (z - delta) * alpha + momentum * (1 - alpha)))


class APGD(Attack):
    """APGD (Croce & Hein 2020) with the loss `loss` (CE, DLR, targeted DLR) through D.

    Args:
        steps: N, iterations of the schedule (N + 1 gradient evaluations; 0: δ₀).
        budget: `LinfBall` (sign steps) or `L2Ball` (normalised steps); η_0 = 2ε.
        loss: `partial` of a loss term taking `target_class`.
        target_class: a class index: the loss is aimed at it (`attack.target_class`).
        rho: condition 1's fraction (0.75).
        momentum: α (0.75).
        random_start: start at a random δ₀ on the budget's boundary (torchattacks: always).
        restart: which random start (per-sample streams `apgd_start_<restart>`).
        **loop: `stopping`, `grad_clip` of the loop.
    """

    def __init__(
        self,
        steps: int,
        budget: Budget,
        loss: partial,
        target_class: int | None = None,
        rho: float = 0.75,
        momentum: float = 0.75,
        random_start: bool = True,
        restart: int = 0,
        **loop: Any,
    ) -> None:
        if not isinstance(budget, LinfBall | L2Ball):
            raise ValueError(
                f"APGD needs budget=linf or budget=l2 (its step size starts at 2ε), "
                f"got {type(budget).__name__}"
            )
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError(f"attack.steps must be an integer >= 0, got {steps!r}")
        term: LossTerm = loss(target_class=target_class)
        super().__init__(
            {"task": term},
            {"task": 1.0},
            steps + 1 if steps else 0,
            optimizer=None,
            budget=budget,
            random_start=random_start,
            **loop,
        )
        self.iterations, self.rho, self.momentum = steps, rho, momentum
        self.restart = restart

    def step_rule(self, delta: Tensor, project: Callable[[Tensor], Tensor]) -> APGDStep:
        return APGDStep(
            [delta],
            project,
            self.budget.epsilon,
            self.iterations,
            norm=self.budget.norm,
            rho=self.rho,
            momentum=self.momentum,
        )

    def observe(self, optimizer: Optimizer, loss: Tensor) -> None:
        optimizer.observe(loss)

    def initial_delta(self, inputs: AttackInputs) -> Tensor:
        """torchattacks' start, drawn per sample from (seed, index): L∞ a uniform t ∈ [−1,1)
        scaled to ‖δ₀‖∞ = ε; L2 a Gaussian direction at radius ε; then the image box."""
        if not self.random_start:
            return torch.zeros_like(inputs.noisy)
        shape, stream = inputs.noisy.shape[1:], f"apgd_start_{self.restart}"
        if self.budget.norm == "linf":
            t = per_sample_rand(shape, inputs.index, inputs.seed, stream, inputs.noisy) * 2 - 1
            size = t.flatten(1).abs().amax(dim=1)
        else:
            t = per_sample_randn(shape, inputs.index, inputs.seed, stream, inputs.noisy)
            size = t.pow(2).flatten(1).sum(dim=1).sqrt() + 1e-12
        start = self.budget.epsilon * t / size.view(-1, *([1] * (t.dim() - 1)))
        return self.budget.project(start, inputs.noisy)
