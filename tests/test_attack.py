"""The attack loop and MIGA: the attack lowers the accuracy it targets, within its budget."""

from __future__ import annotations

import copy
from functools import partial

import pytest
import torch
from torch import nn

from miga.attacks.base import Attack, StopWhenMisclassified
from miga.attacks.budgets import L2Ball, LinfBall, Unbounded
from miga.attacks.miga import MIGA
from miga.attacks.optim import SignGradientDescent
from miga.attacks.state import AttackInputs, StepState, Victim
from miga.attacks.terms import LossTerm, OutputFidelity, TaskCrossEntropy
from miga.mi.cross_entropy import CrossEntropyMI
from miga.threats.noise import GaussianNoise
from tests.conftest import MIGA_KNOBS, attack_knobs

EPS = 4 / 255


def _inputs(clean, labels, index, denoiser, sigma=25.0, seed=0) -> AttackInputs:
    noisy = GaussianNoise(sigma)(clean, index, seed)
    with torch.no_grad():
        denoised = denoiser(noisy)
    return AttackInputs(clean, noisy, denoised, index, label=labels, seed=seed)


def _miga(steps: int, form: str = "ce", **kwargs) -> MIGA:
    knobs = {**attack_knobs("miga", *MIGA_KNOBS), "lambda_mi": 10.0 if form == "ce" else 100.0}
    return MIGA(
        CrossEntropyMI(form=form),
        steps=steps,
        optimizer=partial(torch.optim.Adam, lr=0.1),
        scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=30, gamma=0.5),
        budget=LinfBall(EPS),
        **{**knobs, **kwargs},
    )


def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(images).argmax(1) == labels).float().mean())


@pytest.mark.parametrize("form", ["ce", "prob_mse"])
def test_miga_lowers_demo_accuracy_within_linf_budget(demo_models, demo_batch, form) -> None:
    denoiser, classifier = demo_models
    clean, labels, index = (t[:7] for t in demo_batch)
    inputs = _inputs(clean, labels, index, denoiser)
    with torch.enable_grad():
        result = _miga(steps=8, form=form)(inputs, Victim(denoiser, classifier))
    attacked = denoiser(inputs.noisy + result.delta)
    acc_denoised = _accuracy(classifier, inputs.denoised, labels)
    acc_attacked = _accuracy(classifier, attacked, labels)
    assert acc_denoised >= 0.7
    assert acc_attacked <= acc_denoised - 0.4
    assert result.delta.abs().max() <= EPS + 1e-6
    perturbed = inputs.noisy + result.delta
    assert perturbed.min() >= 0 and perturbed.max() <= 1
    assert not result.flagged.any()
    assert result.steps.tolist() == [8] * 7


def test_batch_composition_does_not_change_a_samples_result(demo_models, demo_batch) -> None:
    """Per-sample losses: a sample's δ is the same alone or in a batch (in float64, where
    kernel rounding cannot flip Adam's first, sign-like step on near-zero gradients)."""
    denoiser, classifier = (copy.deepcopy(m).double() for m in demo_models)
    clean, labels, index = (t[:4] for t in demo_batch)
    inputs = _inputs(clean.double(), labels, index, denoiser)
    with torch.enable_grad():
        together = _miga(steps=3)(inputs, Victim(denoiser, classifier)).delta
        alone = _miga(steps=3)(
            inputs.select(torch.tensor([False, True, False, False])), Victim(denoiser, classifier)
        ).delta
    torch.testing.assert_close(together[1:2], alone, atol=1e-9, rtol=0)


class _PoisonOne(LossTerm):
    """A loss that is NaN for the sample with index 1."""

    def forward(self, state: StepState) -> torch.Tensor:
        loss = state.attacked.flatten(1).mean(1)
        return torch.where(state.inputs.index == 1, torch.full_like(loss, float("nan")), loss)


def test_a_nan_sample_is_flagged_and_the_batch_continues() -> None:
    clean = torch.rand(3, 3, 8, 8)
    index = torch.arange(3)
    inputs = AttackInputs(clean, clean, clean, index)
    attack = Attack(
        {"poison": _PoisonOne()},
        {"poison": 1.0},
        steps=4,
        optimizer=partial(torch.optim.SGD, lr=0.01),
        budget=Unbounded(),
    )
    with torch.enable_grad():
        result = attack(inputs, Victim(nn.Identity()))
    assert result.flagged.tolist() == [False, True, False]
    assert result.steps.tolist() == [4, 0, 4]
    assert result.delta[1].abs().max() == 0  # frozen at its last finite δ
    assert result.delta[0].abs().max() > 0


def test_stopping_rule_freezes_successful_samples(demo_models, demo_batch) -> None:
    denoiser, classifier = demo_models
    clean, labels, index = (t[:7] for t in demo_batch)
    inputs = _inputs(clean, labels, index, denoiser)
    with torch.enable_grad():
        result = _miga(steps=12, stopping=StopWhenMisclassified())(
            inputs, Victim(denoiser, classifier)
        )
    assert result.stopped.any()
    assert (result.steps[result.stopped] < 12).all()
    attacked = denoiser(inputs.noisy + result.delta)
    with torch.no_grad():
        still_wrong = classifier(attacked).argmax(1) != labels
    assert still_wrong[result.stopped].all()


def test_ifgsm_is_the_same_loop_with_a_sign_optimiser(demo_models, demo_batch) -> None:
    denoiser, classifier = demo_models
    clean, labels, index = (t[:7] for t in demo_batch)
    inputs = _inputs(clean, labels, index, denoiser)
    ifgsm = Attack(
        {"task": TaskCrossEntropy()},
        {"task": 1.0},
        steps=5,
        optimizer=partial(SignGradientDescent, lr=1 / 255),
        budget=LinfBall(EPS),
    )
    with torch.enable_grad():
        result = ifgsm(inputs, Victim(denoiser, classifier))
    assert result.delta.abs().max() <= EPS + 1e-6
    # five sign steps of 1/255 reach at most 5/255 before projection: every touched value ≤ 4/255
    assert _accuracy(classifier, denoiser(inputs.noisy + result.delta), labels) < _accuracy(
        classifier, inputs.denoised, labels
    )


@pytest.mark.parametrize("budget,norm", [(LinfBall(0.1), float("inf")), (L2Ball(0.5), 2)])
def test_budgets_project_into_the_ball_and_valid_images(budget, norm) -> None:
    noisy = torch.rand(4, 3, 6, 6)
    delta = torch.randn(4, 3, 6, 6)
    projected = budget.project(delta, noisy)
    norms = projected.flatten(1).norm(p=norm, dim=1)
    assert (norms <= budget.epsilon + 1e-5).all()
    assert ((noisy + projected) >= 0).all() and ((noisy + projected) <= 1).all()
    start = budget.random_start(noisy, torch.arange(4), seed=3)
    torch.testing.assert_close(start, budget.random_start(noisy, torch.arange(4), seed=3))
    assert (start.flatten(1).norm(p=norm, dim=1) <= budget.epsilon + 1e-5).all()


def test_output_fidelity_is_per_sample_mse() -> None:
    clean = torch.zeros(2, 3, 4, 4)
    output = torch.stack([torch.full((3, 4, 4), 0.1), torch.full((3, 4, 4), 0.3)])
    state = StepState(
        AttackInputs(clean, clean, clean, torch.arange(2)),
        Victim(nn.Identity()),
        delta=torch.zeros_like(clean),
        perturbed=clean,
        attacked=output,
    )
    torch.testing.assert_close(OutputFidelity("clean")(state), torch.tensor([0.01, 0.09]))


def test_negative_steps_and_epsilon_are_refused() -> None:
    with pytest.raises(ValueError, match="MIGA needs attack.steps >= 1, got 0"):
        _miga(steps=0)
    with pytest.raises(ValueError, match="attack.steps must be >= 0, got -1"):
        Attack({}, {}, steps=-1, optimizer=partial(torch.optim.Adam, lr=0.1))
    with pytest.raises(TypeError, match="attack.steps must be an integer, got '3'"):
        Attack({}, {}, steps="3", optimizer=partial(torch.optim.Adam, lr=0.1))
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        LinfBall(-0.1)
