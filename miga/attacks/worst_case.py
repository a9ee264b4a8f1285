"""The worst case over an attack ensemble (`attack=worst_case`): robust accuracy.

Members run in order, each on the images no earlier member broke (a sub-batch: later members
cost less, benchmarks/worst_case.py measures how much). An image is *broken* when the downstream
model's top-1 class on D(T(x_n+δ)) (the evaluation path, real defense) is not its label — for
targeted members too, as in AutoAttack: robust accuracy asks whether the label survives, and a
targeted member is one more way to search for a flip. Per image the first successful δ is kept
and the member's name is recorded (`broken_by`, `samples.csv`); an image no member broke keeps
δ = 0 (AutoAttack's convention: no adversarial example found, the input itself) and
`broken_by` "". Only *eligible* images are attacked: those D(x_n) classifies correctly (the
`success` column's rule); the others keep δ = 0, `broken_by` "" and are left out of the rate.

Masked gradients: an image broken by a gradient-free member (`Attack.uses_gradients` false,
Square) that every gradient member had tried and missed is flagged (`masked_gradient`) and a
warning goes to the cell log. The check needs the gradient-free member after every gradient
member in the order (the default list puts Square last).

Reference: F. Croce & M. Hein, "Reliable evaluation of adversarial robustness with an ensemble
of diverse parameter-free attacks", ICML 2020 (AutoAttack's worst case over APGD-CE, APGD-T,
FAB-T, Square). Defaults (conf/attack/worst_case.yaml): MIGA, I-FGSM at its tuned step, APGD-CE,
APGD-DLR, their targeted forms, Square.

Rounding: each member's verdict is computed on its sub-batch; the module scores the kept δ on
the whole batch. Batched kernels round differently (docs/architecture.md §7), so an image on
the decision boundary within float rounding could be scored differently from its verdict;
`robust` and `broken_by` are the ensemble's verdicts, `success` the module's scoring.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from miga.attacks.base import Attack, AttackResult
from miga.attacks.state import AttackInputs, Victim
from miga.utils.tensors import per_sample

if TYPE_CHECKING:
    from miga.threats.sensor import SensorNoise

log = logging.getLogger(__name__)


class WorstCase(Attack):
    """Run `members` in order on the survivors; keep each image's first successful δ.

    Args:
        members: name → attack, in the order they run; the name is the `broken_by` value
            (a Python identifier, so it reads back from `samples.csv` as text).
    """

    def __init__(self, members: Mapping[str, Attack]) -> None:
        super().__init__({}, {}, steps=0, optimizer=None)
        if not members:
            raise ValueError("attack=worst_case needs at least one entry in attack.members")
        for name, member in members.items():
            if not str(name).isidentifier() or str(name).lower() in ("nan", "inf", "infinity"):
                raise ValueError(
                    f"attack.members key '{name}' must be a Python identifier (it is the "
                    "`broken_by` value in samples.csv)"
                )
            if not isinstance(member, Attack):
                raise TypeError(
                    f"attack.members.{name} must be an attack (a `_target_` subclassing "
                    f"miga.attacks.Attack), got {type(member).__name__}"
                )
        self.members = nn.ModuleDict(dict(members))
        gradient = [member.uses_gradients for member in self.members.values()]
        #: per member: a break by it means every gradient member before it missed (masking)
        self.checks_masking = [
            not uses and any(gradient[:k]) and not any(gradient[k + 1 :])
            for k, uses in enumerate(gradient)
        ]

    def forward(
        self, inputs: AttackInputs, victim: Victim, sensor: SensorNoise | None = None
    ) -> AttackResult:
        if inputs.label is None or victim.downstream is None:
            raise ValueError("attack=worst_case needs labels and a downstream model (known task)")
        batch, device = len(inputs), inputs.noisy.device
        delta = torch.zeros_like(inputs.noisy)
        steps = torch.zeros(batch, dtype=torch.long, device=device)
        flagged = torch.zeros(batch, dtype=torch.bool, device=device)
        breaker = torch.full((batch,), -1, dtype=torch.long, device=device)
        history: list[float] = []
        eligible = self._correct(victim, inputs.denoised, inputs.label)
        survivors = eligible.clone()
        for k, member in enumerate(self.members.values()):
            rows = survivors.nonzero().squeeze(1)  # one host read per member
            if len(rows) == 0:
                break
            sub = inputs.select(survivors)
            result = member(sub, victim, sensor)
            with torch.no_grad():
                attacked = victim.evaluate(sub.noisy + result.delta, sub.index, sub.seed)
                hit = ~self._correct(victim, attacked, sub.label)
            steps[rows] += result.steps
            flagged[rows] |= result.flagged
            delta[rows] = torch.where(
                per_sample(hit, result.delta), result.delta.to(delta.dtype), 0.0
            )
            breaker[rows] = torch.where(hit, k, -1)
            survivors[rows] = ~hit
            history += result.loss_history
        names = list(self.members)
        broken_by = [names[k] if k >= 0 else "" for k in breaker.tolist()]
        checks = torch.tensor(self.checks_masking + [False], device=device)
        masked = checks[breaker]  # index −1 picks the trailing False
        if bool(masked.any()):
            log.warning(
                "worst_case: %d image(s) broken only by a gradient-free member (%s) after every "
                "gradient member missed them: the gradients are masked (column masked_gradient)",
                int(masked.sum()),
                ", ".join(sorted({broken_by[i] for i in masked.nonzero().flatten().tolist()})),
            )
        return AttackResult(
            delta=delta.detach(),
            steps=steps,
            flagged=flagged,
            stopped=breaker >= 0,
            loss_history=history,
            broken_by=broken_by,
            masked_gradient=masked,
            eligible=eligible,
        )

    @staticmethod
    @torch.no_grad()
    def _correct(victim: Victim, images: Tensor, label: Tensor) -> Tensor:
        """(B,) bool: the downstream model's top-1 class on `images` is the label, computed in
        float32 with autocast off, as the module scores it."""
        with torch.autocast(device_type=images.device.type, enabled=False):
            return victim.downstream(images.float()).argmax(dim=1) == label
