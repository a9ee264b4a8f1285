"""Square Attack: a score-based black-box attack, the ensemble's check for masked gradients.

Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box
adversarial attack via random search", ECCV 2020, arXiv 1912.00049. L∞ form (their Alg. 1 with
the "vertical stripes" initialisation and the margin loss), as in AutoAttack and torchattacks.

Defaults (their one home is conf/attack/square.yaml; AutoAttack's "standard" Square):
`n_queries` 5000, `p_init` 0.8, p-schedule rescaled to `n_queries` (`rescale_schedule`), margin
loss f_y − max_{k≠y} f_k on the downstream logits.

Why it is not an `Attack` loop run: it takes no gradient. Each query is a forward pass through
the *evaluation* path, f(D(T(x_n+δ))) with the real defense T (`Victim.evaluate`), so a model
whose gradient is zero, wrong or obfuscated (a quantisation, a non-adaptive defense) is still
attacked: where Square breaks an image every gradient attack missed, the gradients were masked
(miga.attacks.worst_case flags it).

Randomness is per sample, from a generator seeded by (seed, "square", dataset index), like the
loop's random start: an image's δ does not depend on the batch it is in. For one image the draws
come in the order torchattacks 3.5.1 makes them from its global RNG (stripes, then per query
the square's row, column and per-channel sign), so `torchattacks.Square(seed=sample_seed(…))`
on a batch of one gives the same δ (tests/test_worst_case.py). Unlike torchattacks, each image
draws its own square position (torchattacks shares one per query across the batch).

Bookkeeping: `steps` counts the queries after the initial one, `stopped` marks images broken
(margin ≤ 0) before the query budget ran out, `flagged` images whose margin turned non-finite
(their δ stays the last one with a finite margin).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from miga.attacks.base import Attack, AttackResult
from miga.attacks.budgets import LinfBall
from miga.attacks.state import AttackInputs, Victim
from miga.utils.seeding import sample_seed
from miga.utils.tensors import per_sample

if TYPE_CHECKING:
    from miga.threats.sensor import SensorNoise

#: The seed stream of Square's draws (miga.utils.seeding).
STREAM = "square"


def p_selection(p_init: float, query: int, n_queries: int, rescale: bool = True) -> float:
    """The paper's schedule of p, the fraction of pixels a square covers, at query `query`:
    halved at queries 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of 10 000 (rescaled to
    `n_queries` when `rescale`)."""
    it = int(query / n_queries * 10000) if rescale else query
    for bound, divisor in (
        (8000, 512),
        (6000, 256),
        (4000, 128),
        (2000, 64),
        (1000, 32),
        (500, 16),
        (200, 8),
        (50, 4),
        (10, 2),
    ):
        if it > bound:
            return p_init / divisor
    return p_init


def margin(logits: Tensor, label: Tensor) -> Tensor:
    """f_y − max_{k≠y} f_k per image: ≤ 0 once the label is no longer the top class."""
    rows = torch.arange(len(label), device=logits.device)
    correct = logits[rows, label]
    others = logits.clone()
    others[rows, label] = -float("inf")
    return correct - others.amax(dim=1)


class Square(Attack):
    """Square Attack, L∞, untargeted, margin loss (Andriushchenko et al. 2020).

    Args:
        budget: the shared threat model; must be an L∞ ball (`budget=linf`).
        n_queries: queries per image after the initial one (default 5000, AutoAttack's).
        p_init: initial fraction of pixels a square covers (default 0.8).
        rescale_schedule: rescale the p-schedule from 10 000 queries to `n_queries`.
        steps: accepted (ignored) so a sweep may set `attack.steps` for every attack.
    """

    uses_gradients = False

    def __init__(
        self,
        budget: LinfBall,
        n_queries: int = 5000,
        p_init: float = 0.8,
        rescale_schedule: bool = True,
        steps: int | None = None,
    ) -> None:
        if not isinstance(budget, LinfBall) or not math.isfinite(budget.epsilon):
            raise ValueError(
                f"attack=square is an L∞ attack: `budget` must be a bounded LinfBall "
                f"(budget=linf), got {type(budget).__name__}"
            )
        if not isinstance(n_queries, int) or isinstance(n_queries, bool) or n_queries < 0:
            raise ValueError(f"attack.n_queries must be an integer >= 0, got {n_queries!r}")
        if not 0 < p_init <= 1:
            raise ValueError(f"attack.p_init must be in (0, 1], got {p_init}")
        super().__init__({}, {}, steps=0, optimizer=None, budget=budget)
        self.n_queries = n_queries
        self.p_init = float(p_init)
        self.rescale_schedule = rescale_schedule

    @torch.no_grad()
    def forward(
        self, inputs: AttackInputs, victim: Victim, sensor: SensorNoise | None = None
    ) -> AttackResult:
        if sensor is not None and sensor.attack_draws:
            raise ValueError(
                "attack=square does not do EOT over sensor draws (sensor.attack_draws)"
            )
        if inputs.label is None or victim.downstream is None:
            raise ValueError("attack=square needs labels and a downstream model (known task)")
        x, label, eps = inputs.noisy, inputs.label, self.budget.epsilon
        batch, (c, h, w) = len(x), x.shape[1:]
        device = x.device
        generators = [_generator(inputs.seed, int(i)) for i in inputs.index.tolist()]

        def query(images: Tensor, rows: Tensor) -> Tensor:
            logits = victim.downstream(victim.evaluate(images, inputs.index[rows], inputs.seed))
            return margin(logits.float(), label[rows])

        everyone = torch.arange(batch, device=device)
        stripes = torch.stack(
            [_sign(torch.rand((1, c, 1, w), generator=g))[0] for g in generators]
        ).to(device=device, dtype=x.dtype)
        best = torch.clamp(x + eps * stripes, 0.0, 1.0)
        best_margin = query(best, everyone)
        flagged = ~torch.isfinite(best_margin)
        best = torch.where(per_sample(flagged, x), x, best)
        steps = torch.zeros(batch, dtype=torch.long, device=device)
        for it in range(self.n_queries):
            active = ((best_margin > 0) & ~flagged).nonzero().flatten()
            if len(active) == 0:
                break
            p = p_selection(self.p_init, it, self.n_queries, self.rescale_schedule)
            side = max(int(round(math.sqrt(p * (c * h * w) / c))), 1)  # torchattacks' rounding
            candidates = best[active].clone()
            for k, row in enumerate(active.tolist()):
                g = generators[row]
                top = int(0 + (h - side) * torch.rand((1,), generator=g))
                left = int(0 + (w - side) * torch.rand((1,), generator=g))
                sign = _sign(torch.rand((c, 1, 1), generator=g)).to(device=device, dtype=x.dtype)
                candidates[k, :, top : top + side, left : left + side] += 2.0 * eps * sign
            clean = x[active]
            candidates = torch.min(torch.max(candidates, clean - eps), clean + eps).clamp(0, 1)
            value = query(candidates, active)
            finite = torch.isfinite(value)
            better = (value < best_margin[active]) & finite
            best_margin[active] = torch.where(better, value, best_margin[active])
            best[active] = torch.where(per_sample(better, candidates), candidates, best[active])
            flagged[active] |= ~finite
            steps[active] += 1
        stopped = (best_margin <= 0) & ~flagged & (steps < self.n_queries)
        return AttackResult((best - x).detach(), steps, flagged, stopped, [])


def _generator(seed: int, index: int) -> torch.Generator:
    generator = torch.Generator(device="cpu")
    generator.manual_seed(sample_seed(seed, index, STREAM))
    return generator


def _sign(uniform: Tensor) -> Tensor:
    """±1 from uniform [0,1) draws, torchattacks' `random_choice` (sign(2u − 1))."""
    return torch.sign(2 * uniform - 1)
