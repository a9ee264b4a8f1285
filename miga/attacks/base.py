"""The one attack loop. Attacks differ only in their loss terms, optimiser and budget.

δ is a tensor optimised by an ordinary torch optimiser (Adam for MIGA, sign-gradient for
I-FGSM) and projected onto the budget after every step (rai-toolbox's "perturbation + projected
optimiser" pattern). Per-sample bookkeeping:

- a sample whose loss turns NaN/Inf is *flagged* and frozen at its last finite δ — the δ of the
  step before, whose loss was finite (δ₀ if the very first loss is non-finite), with `steps`
  counting the updates that led to it; the rest of the batch continues (one bad image never
  poisons a batch);
- an optional stopping rule freezes samples that already reached the goal, and frozen samples
  leave the forward/backward pass, so early stopping saves compute, not just updates (reading
  which samples remain is the loop's one host read per step; without a stopping rule a flagged
  sample stays in the pass, its loss masked out, and no step reads the device).

Under the sensor threat model (miga.threats.sensor) with K attack draws, each step scores δ on K
fresh noisy draws of the clean image and minimises the mean loss over them (EOT); the stopping
rule then freezes a sample only when its goal holds on all K draws of the step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from miga.attacks.budgets import Budget, Unbounded
from miga.attacks.state import AttackInputs, StepState, Victim
from miga.attacks.terms import LossTerm
from miga.utils.tensors import per_sample, sample_norm

if TYPE_CHECKING:
    from miga.threats.sensor import SensorNoise

#: Called after every step with 0-dim device tensors ("loss", "active"): reading one is a host sync.
StepCallback = Callable[[int, dict[str, Tensor]], None]


@dataclass
class AttackResult:
    """δ per sample and what happened while finding it."""

    delta: Tensor
    steps: Tensor  # (B,) steps each sample was updated
    flagged: Tensor  # (B,) bool: stopped because its loss became non-finite
    stopped: Tensor  # (B,) bool: stopped early by the stopping rule
    loss_history: list[float] = field(default_factory=list)
    # An ensemble's per-sample verdict (miga.attacks.worst_case); None for a single attack.
    broken_by: list[str] | None = None  # the member whose δ was kept, "" where none broke it
    masked_gradient: Tensor | None = None  # (B,) bool: only a gradient-free member broke it
    eligible: Tensor | None = None  # (B,) bool: D(x_n) classified correctly (attacked at all)


class StoppingRule(nn.Module):
    """Says which samples of a step have reached the attack's goal (bool (B,))."""

    def forward(self, state: StepState) -> Tensor:
        return torch.zeros(len(state.inputs), dtype=torch.bool, device=state.delta.device)


class StopWhenMisclassified(StoppingRule):
    """Stop a sample once the downstream model no longer predicts its true label."""

    def forward(self, state: StepState) -> Tensor:
        return state.predictions() != state.inputs.label


class Attack(nn.Module):
    """Minimise Σ_k weight_k · term_k(δ) over δ with `optimizer`, projecting onto `budget`.

    Args:
        terms: named loss terms, each (B,) per sample.
        weights: weight per term name (a term with weight 0 is not computed).
        steps: optimisation steps (0 = return δ₀: the "no attack" baseline).
        optimizer: `partial` of a torch optimiser taking the parameter list, e.g. Adam(lr=0.1).
        scheduler: optional `partial` of an LR scheduler taking the optimiser.
        budget: threat model projected onto after every step.
        grad_clip: optional max L2 norm of the gradient, of each sample's or of the batch's.
        grad_clip_scope: `sample` (default: each sample's gradient clipped alone, results
            independent of the batch) or `batch` (one norm over the whole batch's gradient,
            `torch.nn.utils.clip_grad_norm_([δ])`, as the MIGA authors' unknown-task script).
        loss_reduction: how per-sample losses make the backward's scalar: `sum` (default: each
            sample's gradient is its own loss's) or `mean` over the batch (the authors' scripts;
            Adam's ε and a batch-wide clip then see gradients 1/B as large).
        clamp_input: clamp x_n+δ to [0,1] inside the forward (the authors' scripts), on top of
            the budget's projection; the returned δ is then the one the denoiser saw,
            clamp(x_n+δ, 0, 1) − x_n.
        clamp_output: None: D(x_n+δ) as the denoiser is configured (`denoiser.clamp`);
            false/true: the denoiser's raw/[0,1]-clamped output inside the attack (the authors'
            scripts do not clamp it). Needs a denoiser whose forward takes `clamp=`
            (`miga.denoisers.Denoiser`).
        random_start: start from a random δ in the budget instead of 0.
        stopping: optional rule freezing samples that reached the goal.

    `uses_gradients` (class attribute): whether the attack follows ∇_δ; a gradient-free one
    (Square) breaking what every gradient attack missed is the sign of masked gradients.
    """

    uses_gradients: bool = True

    def __init__(
        self,
        terms: Mapping[str, LossTerm],
        weights: Mapping[str, float],
        steps: int,
        optimizer: partial,
        scheduler: partial | None = None,
        budget: Budget | None = None,
        grad_clip: float | None = None,
        random_start: bool = False,
        stopping: StoppingRule | None = None,
        grad_clip_scope: Literal["sample", "batch"] = "sample",
        loss_reduction: Literal["sum", "mean"] = "sum",
        clamp_input: bool = False,
        clamp_output: bool | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(steps, int) or isinstance(steps, bool):
            raise TypeError(f"attack.steps must be an integer, got {steps!r}")
        if steps < 0:
            raise ValueError(f"attack.steps must be >= 0, got {steps}")
        if grad_clip_scope not in ("sample", "batch"):
            raise ValueError(
                f"attack.grad_clip_scope must be 'sample' or 'batch', got {grad_clip_scope!r}"
            )
        if loss_reduction not in ("sum", "mean"):
            raise ValueError(
                f"attack.loss_reduction must be 'sum' or 'mean', got {loss_reduction!r}"
            )
        unknown = set(weights) - set(terms)
        if unknown:
            raise ValueError(f"attack weights name unknown terms {sorted(unknown)}")
        self.terms = nn.ModuleDict({k: v for k, v in terms.items() if weights.get(k, 1.0)})
        self.weights = {k: float(weights.get(k, 1.0)) for k in self.terms}
        self.steps = steps
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.budget = budget if budget is not None else Unbounded()
        self.grad_clip = grad_clip
        self.grad_clip_scope = grad_clip_scope
        self.loss_reduction = loss_reduction
        self.clamp_input = clamp_input
        self.clamp_output = clamp_output
        self.random_start = random_start
        self.stopping = stopping
        self.on_step: StepCallback | None = None

    def objective(self, state: StepState) -> tuple[Tensor, dict[str, Tensor]]:
        """Weighted per-sample loss (B,) and each term's unweighted value."""
        parts = {name: term(state) for name, term in self.terms.items()}
        total = sum(self.weights[name] * value for name, value in parts.items())
        return total, parts

    def step_rule(self, delta: Tensor, project: Callable[[Tensor], Tensor]) -> Optimizer:
        """The optimiser of one batch's δ. A step rule that projects inside its step (APGD's
        momentum step) overrides this to receive the batch's projection onto the budget."""
        return self.optimizer([delta])

    def observe(self, optimizer: Optimizer, loss: Tensor) -> None:
        """Called before every optimiser step with each sample's loss (B,) at the δ the
        gradient was taken at (rows out of the pass are 0, a flagged sample's may be
        non-finite: the write-back restores both samples' δ after the step). Step rules
        that adapt per sample (APGD's step-size schedule) read it here; nothing by default."""

    def initial_delta(self, inputs: AttackInputs) -> Tensor:
        if self.random_start:
            return self.budget.random_start(inputs.noisy, inputs.index, inputs.seed)
        return torch.zeros_like(inputs.noisy)

    def forward(
        self, inputs: AttackInputs, victim: Victim, sensor: SensorNoise | None = None
    ) -> AttackResult:
        """Run the attack on one batch; call under `torch.enable_grad()`.

        `sensor` (with `attack_draws` K ≥ 1): optimise the expectation over K noise draws per
        step instead of the batch's own x_n (EOT); δ is still projected around x_n.

        Without a stopping rule the loop never waits on the device: every mask stays a tensor,
        a flagged sample stays in the pass (its loss masked out, its δ written back), and the
        loss history is read once, at the end of the batch. A stopping rule reads its mask
        once per step, to take frozen samples out of the forward/backward pass."""
        batch = len(inputs)
        device = inputs.noisy.device
        delta = self.initial_delta(inputs).detach().requires_grad_(True)
        steps = torch.zeros(batch, dtype=torch.long, device=device)
        flagged = torch.zeros(batch, dtype=torch.bool, device=device)
        stopped = torch.zeros(batch, dtype=torch.bool, device=device)
        if self.steps == 0:
            return AttackResult(delta.detach(), steps, flagged, stopped, [])
        project = self.budget.projector(inputs.noisy)
        optimizer = self.step_rule(delta, project)
        scheduler = self.scheduler(optimizer) if self.scheduler is not None else None
        trace = _Trace()
        previous: Tensor | None = None  # the δ evaluated at the step before (a finite loss)

        for step in range(self.steps):
            active = ~(flagged | stopped)
            rows = None  # the sub-batch's rows when frozen samples left the pass
            if self.stopping is not None:
                count = int(active.sum())  # the one host read per step, for the sub-batch
                if count == 0:
                    break
                if count < batch:
                    rows = active.nonzero().squeeze(1)
            sub_inputs = inputs if rows is None else inputs.select(active)
            sub_delta = delta if rows is None else delta[rows]
            state = self._step_state(sub_inputs, victim, sub_delta, sensor, step)
            loss = state.per_image(self.objective(state)[0])

            finite = torch.isfinite(loss).detach()
            done = self._reached(state) & finite if self.stopping is not None else None
            bad = active & ~_to_batch(finite, rows, batch, fill=True)
            flagged |= bad
            if done is not None:
                stopped |= _to_batch(done, rows, batch, fill=False)
            update = ~(flagged | stopped)
            # A sample whose δ gave a non-finite loss goes back to the δ of the step before,
            # through the write-back below (δ itself is in this step's graph).
            if previous is not None:
                steps -= bad.long()
            if self.stopping is not None and not update.any():
                if previous is not None:  # no backward follows: δ may change in place
                    with torch.no_grad():
                        delta.copy_(torch.where(per_sample(bad, delta), previous, delta))
                continue

            with torch.no_grad():
                evaluated = delta.detach()
                frozen = (
                    evaluated.clone()
                    if previous is None
                    else torch.where(per_sample(bad, delta), previous, evaluated)
                )
            previous = frozen
            sub_update = update if rows is None else update[rows]
            optimizer.zero_grad(set_to_none=True)
            kept = torch.where(sub_update, loss, torch.zeros_like(loss)).sum()
            (kept / batch if self.loss_reduction == "mean" else kept).backward()
            self._sanitise_gradient(delta)
            self.observe(optimizer, _spread(loss.detach(), rows, batch))
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            with torch.no_grad():
                torch.where(per_sample(update, delta), project(delta), frozen, out=delta)
            steps += update.long()
            trace.record(loss.detach(), finite, update)
            if self.on_step is not None:
                self.on_step(step, trace.last())
        if self.clamp_input:  # the δ the denoiser saw: x_n+δ inside [0,1]
            with torch.no_grad():
                delta.copy_((inputs.noisy + delta).clamp(0.0, 1.0) - inputs.noisy)
        return AttackResult(delta.detach(), steps, flagged, stopped, trace.history())

    def _step_state(
        self,
        inputs: AttackInputs,
        victim: Victim,
        delta: Tensor,
        sensor: SensorNoise | None = None,
        step: int = 0,
    ) -> StepState:
        """x_n+δ and D(x_n+δ); with sensor draws, the K views x+n_k+δ stacked draw-major."""
        if sensor is None or sensor.attack_draws == 0:
            perturbed = self._observed(inputs.noisy + delta)
            return StepState(inputs, victim, delta, perturbed, self._denoise(victim, perturbed))
        draws = sensor.attack_draws
        with torch.no_grad():
            noisy = sensor.attack_noisy(inputs.clean, inputs.index, inputs.seed, step)
        tiled = torch.cat([delta] * draws)
        perturbed = self._observed(sensor.observe(noisy, tiled))
        return StepState(
            inputs=inputs.repeat(draws, noisy),
            victim=victim,
            delta=tiled,
            perturbed=perturbed,
            attacked=self._denoise(victim, perturbed),
            draws=draws,
        )

    def _observed(self, perturbed: Tensor) -> Tensor:
        """x_n+δ as the denoiser receives it: clamped to [0,1] with `clamp_input`."""
        return perturbed.clamp(0.0, 1.0) if self.clamp_input else perturbed

    def _denoise(self, victim: Victim, perturbed: Tensor) -> Tensor:
        if self.clamp_output is None:
            return victim.denoise(perturbed)
        return victim.denoise(perturbed, clamp=self.clamp_output)

    def _reached(self, state: StepState) -> Tensor:
        """(B,) bool: the stopping rule holds for the sample (on every draw of the step)."""
        reached = self.stopping(state).detach()
        if state.draws == 1:
            return reached
        return reached.view(state.draws, -1).all(dim=0)

    def _sanitise_gradient(self, delta: Tensor) -> None:
        """Drop non-finite values and clip each sample's norm (or the batch's). Frozen samples'
        rows need no zeroing: the write-back restores their δ whatever the optimiser did to it
        (torch's optimisers and ours act per value or per sample)."""
        grad = delta.grad
        torch.nan_to_num_(grad, nan=0.0, posinf=0.0, neginf=0.0)
        if self.grad_clip is not None and self.grad_clip_scope == "batch":
            # torch.nn.utils.clip_grad_norm_'s rule, kept on the device (no host read)
            grad.mul_((self.grad_clip / (grad.norm() + 1e-6)).clamp(max=1.0))
        elif self.grad_clip is not None:
            norm = sample_norm(grad).clamp_min(1e-12)
            scale = (self.grad_clip / norm).clamp(max=1.0)
            grad.mul_(per_sample(scale, grad))


def _spread(values: Tensor, rows: Tensor | None, batch: int) -> Tensor:
    """A sub-batch's (n,) values as (B,) values over the batch, 0 elsewhere."""
    if rows is None:
        return values
    return values.new_zeros(batch).index_put_((rows,), values)


def _to_batch(values: Tensor, rows: Tensor | None, batch: int, fill: bool) -> Tensor:
    """A sub-batch's (n,) bool mask as a (B,) mask over the batch, `fill` elsewhere."""
    if rows is None:
        return values
    full = torch.full((batch,), fill, dtype=torch.bool, device=values.device)
    return full.index_put_((rows,), values)


class _Trace:
    """Per-step loss (mean over finite samples) and active fraction, kept on the device and
    read once per batch: the loop's bookkeeping never waits on the host."""

    def __init__(self) -> None:
        self.loss: list[Tensor] = []
        self.active: list[Tensor] = []
        self.updated: list[Tensor] = []

    def record(self, loss: Tensor, finite: Tensor, update: Tensor) -> None:
        kept = torch.where(finite, loss, torch.zeros_like(loss))
        self.loss.append(kept.sum() / finite.sum())
        self.active.append(update.float().mean())
        self.updated.append(update.any())

    def last(self) -> dict[str, Tensor]:
        """This step's values as 0-dim device tensors (reading one is a host sync)."""
        return {"loss": self.loss[-1], "active": self.active[-1]}

    def history(self) -> list[float]:
        """The loss of every step that updated a sample (one host read)."""
        if not self.loss:
            return []
        losses = torch.stack(self.loss).tolist()
        updated = torch.stack(self.updated).tolist()
        return [value for value, kept in zip(losses, updated, strict=True) if kept]
