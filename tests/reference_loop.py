"""The attack loop and the MSE of its terms as they were before the loop stopped waiting on the
host (kept verbatim as the reference): tests/test_loop_equivalence.py asserts that today's loop
and terms give the same rows, bit for bit, wherever both run the same batches (and within float
rounding where they do not: docs/architecture.md, "What the loop guarantees")."""

from __future__ import annotations

import torch
from torch import Tensor

from miga.attacks.base import Attack, AttackResult
from miga.attacks.budgets import Budget
from miga.attacks.denoising_budgets import ZeroMeanL2Ball
from miga.attacks.state import AttackInputs, Victim
from miga.threats.sensor import SensorNoise


def reference_forward(
    self: Attack, inputs: AttackInputs, victim: Victim, sensor: SensorNoise | None = None
) -> AttackResult:
    """Run the attack on one batch; call under `torch.enable_grad()`.

    `sensor` (with `attack_draws` K ≥ 1): optimise the expectation over K noise draws per
    step instead of the batch's own x_n (EOT); δ is still projected around x_n."""
    batch = len(inputs)
    device = inputs.noisy.device
    delta = self.initial_delta(inputs).detach().requires_grad_(True)
    steps = torch.zeros(batch, dtype=torch.long, device=device)
    flagged = torch.zeros(batch, dtype=torch.bool, device=device)
    stopped = torch.zeros(batch, dtype=torch.bool, device=device)
    history: list[float] = []
    if self.steps == 0:
        return AttackResult(delta.detach(), steps, flagged, stopped, history)
    optimizer = self.optimizer([delta])
    scheduler = self.scheduler(optimizer) if self.scheduler is not None else None
    previous: Tensor | None = None  # the δ evaluated at the step before (a finite loss)

    for step in range(self.steps):
        active = ~(flagged | stopped)
        if not active.any():
            break
        rows = active.nonzero().squeeze(1)
        sub_inputs = inputs if bool(active.all()) else inputs.select(active)
        sub_delta = delta if bool(active.all()) else delta[rows]
        state = self._step_state(sub_inputs, victim, sub_delta, sensor, step)
        loss = state.per_image(self.objective(state)[0])

        finite = torch.isfinite(loss).detach()
        bad = rows[~finite]
        flagged[bad] = True
        # A sample whose δ gave a non-finite loss goes back to the δ of the step before,
        # through the step's write-back below (δ itself is in this step's graph).
        if previous is not None:
            steps[bad] -= 1
        done = self._reached(state) & finite if self.stopping else None
        if done is not None:
            stopped[rows[done]] = True
        update = finite if done is None else finite & ~done
        if not update.any():
            if previous is not None:  # no backward follows: δ may change in place
                with torch.no_grad():
                    delta[bad] = previous[bad]
            continue

        frozen = delta.detach().clone()
        if previous is not None:
            frozen[bad] = previous[bad]
        previous = frozen
        optimizer.zero_grad(set_to_none=True)
        torch.where(update, loss, torch.zeros_like(loss)).sum().backward()
        _reference_sanitise(self, delta, keep=~(flagged | stopped))
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        with torch.no_grad():
            keep = (~(flagged | stopped)).view(-1, *([1] * (delta.dim() - 1)))
            projected = _reference_project(self.budget, delta, inputs.noisy)
            delta.copy_(torch.where(keep, projected, frozen))
        steps += (~(flagged | stopped)).long()
        history.append(float(loss.detach()[finite].mean()) if finite.any() else float("nan"))
        if self.on_step is not None:
            self.on_step(step, {"loss": history[-1], "active": float(update.float().mean())})
    return AttackResult(delta.detach(), steps, flagged, stopped, history)


def _reference_sanitise(self: Attack, delta: Tensor, keep: Tensor) -> None:
    """Zero frozen samples' gradient, drop non-finite values, clip each sample's norm."""
    grad = delta.grad
    grad.mul_(keep.view(-1, *([1] * (grad.dim() - 1))).to(grad.dtype))
    torch.nan_to_num_(grad, nan=0.0, posinf=0.0, neginf=0.0)
    if self.grad_clip is not None:
        norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
        scale = (self.grad_clip / norm).clamp(max=1.0)
        grad.mul_(scale.view(-1, *([1] * (grad.dim() - 1))))


def _reference_project(budget: Budget, delta: Tensor, noisy: Tensor) -> Tensor:
    """The projection as it was: the norm ball, then max/min against the image box."""
    if isinstance(budget, ZeroMeanL2Ball):
        return budget.project(delta, noisy)  # its own projection (ObsAtk's set)
    low, high = -noisy.clamp(min=0.0), (1.0 - noisy).clamp(min=0.0)
    return torch.minimum(torch.maximum(budget._project_norm(delta), low), high)


def reference_mse(a: Tensor, b: Tensor) -> Tensor:
    """The terms' per-sample MSE as it was (sub, pow, mean; three-pass backward)."""
    return (a - b).pow(2).flatten(1).mean(dim=1)
