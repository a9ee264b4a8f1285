"""The loop's promise on non-finite losses: a flagged sample keeps its last finite δ.

A term returns NaN for sample 0 from its 4th evaluation on (step index 3). δ₃ produced that
NaN, so the sample must end at δ₂ — what the same attack reaches in 2 steps — with 2 updates
counted, while the rest of the batch is unaffected.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor

from miga.attacks.base import Attack
from miga.attacks.budgets import LinfBall
from miga.attacks.state import StepState
from miga.attacks.terms import LossTerm, TaskCrossEntropy
from tests.test_attack_contracts import _inputs, _models, _run


class NaNFromStep(LossTerm):
    """0 for every sample, NaN for dataset index `index` from evaluation `first` on."""

    def __init__(self, index: int, first: int) -> None:
        super().__init__()
        self.index, self.first, self.calls = index, first, 0

    def forward(self, state: StepState) -> Tensor:
        poisoned = (state.inputs.index == self.index) & (self.calls >= self.first)
        self.calls += 1
        zero = state.delta.flatten(1).sum(1) * 0
        return torch.where(poisoned, torch.full_like(zero, float("nan")), zero)


def _attack(steps: int, nan: LossTerm | None = None) -> Attack:
    terms = {"task": TaskCrossEntropy()}
    if nan is not None:
        terms["nan"] = nan
    return Attack(terms, {}, steps, partial(torch.optim.Adam, lr=0.01), budget=LinfBall(0.1))


def test_a_nan_at_step_3_keeps_the_delta_of_step_2() -> None:
    denoiser, classifier = _models()
    inputs = _inputs(denoiser, classifier)
    poisoned, _ = _run(_attack(6, NaNFromStep(index=0, first=3)), denoiser, classifier, inputs)
    two_steps, _ = _run(_attack(2), denoiser, classifier, inputs)
    clean_run, _ = _run(_attack(6), denoiser, classifier, inputs)
    assert poisoned.flagged.tolist() == [True, False, False, False]
    assert poisoned.steps.tolist() == [2, 6, 6, 6]
    torch.testing.assert_close(poisoned.delta[0], two_steps.delta[0], rtol=0, atol=0)
    assert not torch.equal(poisoned.delta[0], clean_run.delta[0])  # it did move on without NaN
    # the others are untouched: the flagged sample stays in the pass, its loss masked out
    assert torch.equal(poisoned.delta[1:], clean_run.delta[1:])


def test_a_nan_at_the_first_step_keeps_delta_zero() -> None:
    denoiser, classifier = _models()
    result, _ = _run(_attack(4, NaNFromStep(index=2, first=0)), denoiser, classifier)
    assert result.flagged.tolist() == [False, False, True, False]
    assert result.steps[2] == 0 and torch.count_nonzero(result.delta[2]) == 0
