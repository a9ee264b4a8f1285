"""Contracts of the attack loop that a reader of the rows relies on, each checked against an
independent computation: per-sample gradient clipping, the StepLR schedule, the sign and weight
of every MIGA term, the targeted path, equality with torchattacks' BIM and PGD, and L2 budgets.

Small random models (a 2-layer conv "denoiser" and a 10-class classifier on 16×16 images) keep
every test at a fraction of a second.
"""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from miga.attacks import IFGSM, PGD
from miga.attacks.base import Attack
from miga.attacks.budgets import L2Ball, LinfBall, Unbounded
from miga.attacks.miga import MIGA
from miga.attacks.optim import SignGradientDescent
from miga.attacks.state import AttackInputs, StepState, Victim
from miga.attacks.terms import TaskCrossEntropy
from miga.mi.cross_entropy import CrossEntropyMI
from tests.conftest import MIGA_KNOBS, attack_knobs

EPS = 4 / 255
ALPHA = 1 / 255


def _models(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    denoiser = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, 3, 3, padding=1)
    )
    classifier = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 7 * 7, 10)
    )
    return denoiser.eval().requires_grad_(False), classifier.eval().requires_grad_(False)


def _inputs(denoiser: nn.Module, classifier: nn.Module, n: int = 4, range_=1.0) -> AttackInputs:
    """`range_` < 1 keeps x_n inside (0,1) with room to spare (the image box stays inactive)."""
    gen = torch.Generator().manual_seed(1)
    clean = 0.5 + range_ * (torch.rand(n, 3, 16, 16, generator=gen) - 0.5)
    noisy = (clean + 0.1 * range_ * torch.randn(clean.shape, generator=gen)).clamp(0, 1)
    with torch.no_grad():
        denoised = denoiser(noisy)
        label = classifier(denoised).argmax(1)  # "correct" on D(x_n) by construction
    return AttackInputs(clean, noisy, denoised, torch.arange(n), label=label)


def _run(attack: Attack, denoiser, classifier, inputs=None):
    inputs = inputs if inputs is not None else _inputs(denoiser, classifier)
    with torch.enable_grad():
        return attack(inputs, Victim(denoiser, classifier)), inputs


def test_grad_clip_bounds_each_samples_step() -> None:
    denoiser, classifier = _models()
    make = partial(torch.optim.SGD, lr=1.0)
    terms = {"task": TaskCrossEntropy()}
    inputs = _inputs(denoiser, classifier, range_=0.5)
    clipped, _ = _run(
        Attack(terms, {}, 1, make, budget=Unbounded(), grad_clip=1e-3), denoiser, classifier, inputs
    )
    free, _ = _run(Attack(terms, {}, 1, make, budget=Unbounded()), denoiser, classifier, inputs)
    free_norm = free.delta.flatten(1).norm(dim=1)
    clipped_norm = clipped.delta.flatten(1).norm(dim=1)
    assert (free_norm > 1e-3).all()  # the clip is active
    torch.testing.assert_close(clipped_norm, torch.full_like(clipped_norm, 1e-3), rtol=1e-4, atol=0)
    # same direction: clipping scales each sample's gradient, it does not change it
    cos = F.cosine_similarity(clipped.delta.flatten(1), free.delta.flatten(1))
    torch.testing.assert_close(cos, torch.ones_like(cos), rtol=0, atol=1e-5)


class _RecordingAdam(torch.optim.Adam):
    """Adam that records the learning rate each update used."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr=lr)
        self.used: list[float] = []

    def step(self, closure=None):
        self.used.append(self.param_groups[0]["lr"])
        return super().step(closure)


def test_steplr_halves_the_learning_rate_at_step_30() -> None:
    denoiser, classifier = _models()
    created: list[_RecordingAdam] = []

    def make(params):
        created.append(_RecordingAdam(params, lr=0.1))
        return created[-1]

    attack = MIGA(
        CrossEntropyMI(),
        steps=35,
        optimizer=make,
        budget=LinfBall(EPS),
        scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=30, gamma=0.5),
        **attack_knobs("miga", *MIGA_KNOBS),
    )
    result, _ = _run(attack, denoiser, classifier)
    assert result.steps.tolist() == [35] * 4
    assert created[0].used == [0.1] * 30 + [0.05] * 5


def test_miga_objective_is_the_weighted_sum_of_its_terms_with_their_signs() -> None:
    denoiser, classifier = _models()
    inputs = _inputs(denoiser, classifier)
    weights = {"rec": 1.5, "pert": 3.0, "reg": 1e-2, "mi": 10.0}
    attack = MIGA(
        CrossEntropyMI(),
        steps=1,
        optimizer=partial(torch.optim.Adam, lr=0.1),
        lambda_rec=1.5,
        lambda_pert=3.0,
        lambda_reg=1e-2,
        lambda_mi=10.0,
        rec_target="clean",
        perceptual_weight=0.1,
    )
    delta = 0.01 * torch.randn(inputs.noisy.shape, generator=torch.Generator().manual_seed(3))
    perturbed = inputs.noisy + delta
    output = denoiser(perturbed)
    state = StepState(
        inputs=inputs,
        victim=Victim(denoiser, classifier),
        delta=delta,
        perturbed=perturbed,
        attacked=output,
    )
    total, parts = attack.objective(state)
    # each term recomputed independently; the documented signs: fidelity terms are minimised
    # (+MSE, +‖δ‖₂), the MI term is −CE (minimising it pushes f away from the true label)
    expected = {
        "rec": ((output - inputs.clean) ** 2).flatten(1).mean(1),
        "pert": (delta**2).flatten(1).mean(1),
        "reg": delta.flatten(1).norm(dim=1),
        "mi": -F.cross_entropy(classifier(output), inputs.label, reduction="none"),
    }
    for name, value in expected.items():
        torch.testing.assert_close(parts[name], value, rtol=1e-5, atol=1e-7, msg=name)
    torch.testing.assert_close(total, sum(weights[k] * v for k, v in expected.items()))


@pytest.mark.parametrize("attack_name", ["miga", "ifgsm"])
def test_target_class_moves_predictions_to_that_class(attack_name: str) -> None:
    denoiser, classifier = _models()
    inputs = _inputs(denoiser, classifier)
    target = int((inputs.label.max() + 1) % 10)  # a class no sample starts in
    budget = LinfBall(0.5)
    if attack_name == "miga":
        attack = MIGA(
            CrossEntropyMI(),
            target_class=target,
            steps=30,
            budget=budget,
            optimizer=partial(torch.optim.Adam, lr=0.05),
            **{**attack_knobs("miga", *MIGA_KNOBS), "lambda_pert": 0.0},
        )
    else:
        attack = IFGSM(30, partial(SignGradientDescent, lr=0.02), budget, target_class=target)
    result, _ = _run(attack, denoiser, classifier, inputs)
    with torch.no_grad():
        predictions = classifier(denoiser(inputs.noisy + result.delta)).argmax(1)
    assert (inputs.label != target).all()
    assert (predictions == target).all(), predictions


# --------------------------------------------------------------- equality with torchattacks

torchattacks = pytest.importorskip(
    "torchattacks", reason="torchattacks not installed (make test installs it: --no-deps 3.5.1)"
)


class _Composite(nn.Module):
    def __init__(self, denoiser: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.denoiser, self.classifier = denoiser, classifier

    def forward(self, x):
        return self.classifier(self.denoiser(x))


class _DistortionLogits(nn.Module):
    """Logits [0, m] with m = MSE(D(x), x_clean): CE against label 0 is log(1+e^m), increasing
    in m, so torchattacks' CE ascent takes exactly the sign steps of ascent on the output MSE."""

    def __init__(self, denoiser: nn.Module, clean: torch.Tensor) -> None:
        super().__init__()
        self.denoiser, self.clean = denoiser, clean

    def forward(self, x):
        mse = ((self.denoiser(x) - self.clean) ** 2).flatten(1).mean(1)
        return torch.stack([torch.zeros_like(mse), mse * 1e3], dim=1)


@pytest.mark.parametrize("steps", [1, 3, 7])
def test_ifgsm_equals_torchattacks_bim(steps: int) -> None:
    denoiser, classifier = _models()
    inputs = _inputs(denoiser, classifier)
    ours, _ = _run(
        IFGSM(steps, partial(SignGradientDescent, lr=ALPHA), LinfBall(EPS)),
        denoiser,
        classifier,
        inputs,
    )
    bim = torchattacks.BIM(_Composite(denoiser, classifier), eps=EPS, alpha=ALPHA, steps=steps)
    theirs = bim(inputs.noisy, inputs.label) - inputs.noisy
    torch.testing.assert_close(ours.delta, theirs, rtol=0, atol=1e-6)
    assert ours.delta.abs().amax() > 0


@pytest.mark.parametrize("steps", [1, 3, 7])
def test_linf_pgd_equals_torchattacks_pgd(steps: int) -> None:
    denoiser, classifier = _models()
    inputs = _inputs(denoiser, classifier)
    ours, _ = _run(
        PGD(steps, partial(SignGradientDescent, lr=ALPHA), LinfBall(EPS), random_start=False),
        denoiser,
        classifier,
        inputs,
    )
    model = _DistortionLogits(denoiser, inputs.clean)
    pgd = torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=steps, random_start=False)
    theirs = pgd(inputs.noisy, torch.zeros(len(inputs), dtype=torch.long)) - inputs.noisy
    torch.testing.assert_close(ours.delta, theirs, rtol=0, atol=1e-6)
    assert ours.delta.abs().amax() > 0


@pytest.mark.parametrize("step", ["adam", "sign"])
def test_l2_budget_holds_for_adam_and_sign_steps(step: str) -> None:
    denoiser, classifier = _models()
    radius = 0.05
    make = (
        partial(torch.optim.Adam, lr=0.1)
        if step == "adam"
        else partial(SignGradientDescent, lr=0.05)
    )
    attack = Attack({"task": TaskCrossEntropy()}, {}, 5, make, budget=L2Ball(radius))
    result, _ = _run(attack, denoiser, classifier)
    norms = result.delta.flatten(1).norm(dim=1)
    assert (norms <= radius * (1 + 1e-5)).all()
    assert (norms > 0.9 * radius).all()  # the steps are large: the ball's surface is reached
