"""APGD in the one loop equals torchattacks 3.5.1's APGD / APGDT on the same composite f∘D.

Both start from the same δ₀ (torchattacks' own draw: `torch.manual_seed(0)` then its uniform
start, handed to ours through `initial_delta`), run the same N iterations, and ours returns the
best point, which torchattacks returns from `perturb(best_loss=True)` (APGD) and
`attack_single_run` (APGDT). Tolerances: float32 runs of 3 and 10 iterations agree to 1e-6
(ours works in δ-space, torchattacks in x-space: rounding differs by an ulp); over 25 iterations
(checkpoints at 5, 9, 12, 14, 15, …, halvings and resets to the best point) one ulp can flip a
late sign step in float32, so the long runs are compared in float64, to 1e-12.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from miga.attacks.apgd import APGD, checkpoint_windows
from miga.attacks.budgets import L2Ball, LinfBall, Unbounded
from miga.attacks.state import AttackInputs, StepState, Victim
from miga.attacks.terms import DifferenceOfLogitsRatio, TaskCrossEntropy
from miga.utils.host_reads import HostReads
from tests.conftest import compose_config
from tests.test_attack_contracts import _Composite, _inputs, _models

torchattacks = pytest.importorskip(
    "torchattacks", reason="torchattacks not installed (make test installs it: --no-deps 3.5.1)"
)

EPS = 4 / 255
LOSSES = {"ce": TaskCrossEntropy, "dlr": DifferenceOfLogitsRatio}


class _FromStart(APGD):
    """APGD started at a given δ₀ (torchattacks' draw) instead of our per-sample draw."""

    start: torch.Tensor

    def initial_delta(self, inputs: AttackInputs) -> torch.Tensor:
        return self.start.clone()  # the loop updates δ in place


@contextmanager
def _precision(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _setting(dtype: torch.dtype) -> tuple[nn.Module, nn.Module, AttackInputs]:
    denoiser, classifier = _models()
    inputs = _inputs(denoiser, classifier, n=6)
    inputs = AttackInputs(
        inputs.clean.to(dtype),
        inputs.noisy.to(dtype),
        inputs.denoised.to(dtype),
        inputs.index,
        label=inputs.label,
    )
    return denoiser.to(dtype), classifier.to(dtype), inputs


def _their_start(noisy: torch.Tensor, norm: str) -> torch.Tensor:
    """torchattacks' random start after `torch.manual_seed(0)`, as δ₀ = x_adv − x_n."""
    torch.manual_seed(0)
    if norm == "Linf":
        t = 2 * torch.rand(noisy.shape) - 1
        scale = t.flatten(1).abs().amax(dim=1)
    else:
        t = torch.randn(noisy.shape)
        scale = t.pow(2).flatten(1).sum(dim=1).sqrt() + 1e-12
        # torchattacks: ε·t/(‖t‖+1e-12) with ‖·‖ summed over (1,2,3)
    start = (noisy + EPS * t / scale.view(-1, 1, 1, 1)).clamp(0, 1)
    return start - noisy


def _ours(attack: _FromStart, denoiser, classifier, inputs, norm: str) -> torch.Tensor:
    attack.start = _their_start(inputs.noisy, norm)
    with torch.enable_grad():
        result = attack(inputs, Victim(denoiser, classifier))
    assert result.steps.tolist() == [attack.iterations + 1] * len(inputs)
    return result.delta


@pytest.mark.parametrize(
    ("loss", "steps", "dtype", "norm"),
    [
        ("ce", 3, torch.float32, "Linf"),
        ("dlr", 3, torch.float32, "Linf"),
        ("ce", 10, torch.float32, "Linf"),
        ("dlr", 10, torch.float32, "Linf"),
        ("ce", 25, torch.float64, "Linf"),
        ("dlr", 25, torch.float64, "Linf"),
        ("ce", 25, torch.float64, "L2"),
    ],
)
def test_apgd_equals_torchattacks(loss: str, steps: int, dtype: torch.dtype, norm: str) -> None:
    with _precision(dtype):
        denoiser, classifier, inputs = _setting(dtype)
        budget = LinfBall(EPS) if norm == "Linf" else L2Ball(EPS)
        attack = _FromStart(steps, budget, partial(LOSSES[loss]))
        ours = _ours(attack, denoiser, classifier, inputs, norm)
        reference = torchattacks.APGD(
            _Composite(denoiser, classifier), norm=norm, eps=EPS, steps=steps, loss=loss, seed=0
        )
        torch.manual_seed(0)  # perturb(best_loss=True) draws its start without reseeding
        _, best = reference.perturb(inputs.noisy, inputs.label, best_loss=True)
    theirs = best - inputs.noisy
    atol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(ours, theirs, rtol=0, atol=atol)
    if steps >= 10:  # (after 3 iterations the start can still be the best point)
        assert budget.size(ours - attack.start).max() > EPS / 2  # it moved from the start


@pytest.mark.parametrize(("steps", "dtype"), [(10, torch.float32), (25, torch.float64)])
def test_apgd_t_equals_torchattacks_apgdt_at_rank_2(steps: int, dtype: torch.dtype) -> None:
    with _precision(dtype):
        denoiser, classifier, inputs = _setting(dtype)
        loss = partial(DifferenceOfLogitsRatio, target_rank=2)
        attack = _FromStart(steps, LinfBall(EPS), loss)
        ours = _ours(attack, denoiser, classifier, inputs, "Linf")
        reference = torchattacks.APGDT(
            _Composite(denoiser, classifier), eps=EPS, steps=steps, seed=0, n_classes=10
        )
        reference.target_class = 2  # perturb's first target: the runner-up class on x_n
        torch.manual_seed(0)
        best, *_ = reference.attack_single_run(inputs.noisy, inputs.label)
    atol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(ours, best - inputs.noisy, rtol=0, atol=atol)


def test_checkpoint_windows_follow_the_paper() -> None:
    # p_1 = 0.22, windows shrink by 0.03 down to 0.06 of N: 22, 19, 16, …, 7, 6, 6, …
    assert checkpoint_windows(100) == (22, 6, 3)
    assert checkpoint_windows(10) == (2, 1, 1)
    assert checkpoint_windows(1) == (1, 1, 1)


def _state(logits: torch.Tensor, clean_logits: torch.Tensor, label: list[int]) -> StepState:
    """A step whose task model sees `logits` on D(x_n+δ) and `clean_logits` on D(x_n)."""
    inputs = AttackInputs(
        clean_logits, clean_logits, clean_logits, torch.arange(len(label)), torch.tensor(label)
    )
    victim = Victim(nn.Identity(), nn.Identity())
    return StepState(inputs, victim, logits, logits, logits)


def test_dlr_by_hand() -> None:
    logits = torch.tensor([[3.0, 1.0, 2.0, 0.0], [1.0, 4.0, 2.0, 0.0]])
    clean = torch.tensor([[5.0, 1.0, 0.0, 3.0], [5.0, 1.0, 0.0, 3.0]])
    state = _state(logits, clean, label=[0, 0])
    # untargeted, minimised (z_y − max_{i≠y} z_i)/(z_π1 − z_π3): (3−2)/(3−1), (1−4)/(4−1)
    torch.testing.assert_close(DifferenceOfLogitsRatio()(state), torch.tensor([0.5, -1.0]))
    # runner-up on D(x_n) is class 3: (z_y − z_3)/(z_π1 − (z_π3+z_π4)/2): 3/(3−0.5), 1/(4−0.5)
    targeted = DifferenceOfLogitsRatio(target_rank=2)(state)
    torch.testing.assert_close(targeted, torch.tensor([3 / 2.5, 1 / 3.5]))
    # a fixed class wins over the rank: class 1 → (3−1)/2.5, (1−4)/3.5
    fixed = DifferenceOfLogitsRatio(target_class=1, target_rank=2)(state)
    torch.testing.assert_close(fixed, torch.tensor([2 / 2.5, -3 / 3.5]))


def test_bad_settings_name_what_was_expected() -> None:
    with pytest.raises(ValueError, match="budget=linf or budget=l2"):
        APGD(5, Unbounded(), partial(TaskCrossEntropy))
    with pytest.raises(ValueError, match="target_rank must be >= 2"):
        DifferenceOfLogitsRatio(target_rank=1)


# --- on the demo, through the configs ---------------------------------------------------------


@pytest.fixture(scope="module")
def demo(demo_models, demo_batch) -> tuple[Victim, AttackInputs]:
    """Four 32×32 crops of the demo photos, labelled by the classifier on D(x_n)."""
    denoiser, downstream = demo_models
    clean, _, index = (t[:4] for t in demo_batch)
    clean = clean[..., 40:72, 40:72].contiguous()
    gen = torch.Generator().manual_seed(3)
    noisy = (clean + 25 / 255 * torch.randn(clean.shape, generator=gen)).clamp(0, 1)
    with torch.no_grad():
        denoised = denoiser(noisy)
        label = downstream(denoised).argmax(1)
    return Victim(denoiser, downstream), AttackInputs(clean, noisy, denoised, index, label, seed=0)


def _attack(name: str, steps: int) -> APGD:
    return instantiate(compose_config([f"attack={name}", f"attack.steps={steps}"]).attack)


def test_apgd_breaks_the_demo_within_the_budget(demo) -> None:
    """APGD-DLR from its config, 3 iterations: every crop's label flips (DLR > 0 at the best
    point ⇔ misclassified, so the answer is broken whenever an iterate was)."""
    victim, inputs = demo
    attack = _attack("apgd_dlr", steps=3)
    with torch.enable_grad():
        delta = attack(inputs, victim).delta
    assert delta.abs().amax() <= EPS + 1e-6
    perturbed = inputs.noisy + delta
    assert perturbed.min() >= 0 and perturbed.max() <= 1
    with torch.no_grad():
        predicted = victim.downstream(victim.denoise(perturbed)).argmax(1)
    assert (predicted != inputs.label).all(), predicted


@pytest.mark.parametrize("loss", ["ce", "t"])
def test_apgd_reads_the_device_once_per_batch(loss: str) -> None:
    denoiser, classifier, inputs = _setting(torch.float32)

    def reads(steps: int) -> int:
        attack = _attack(f"apgd_{loss}", steps)
        with torch.enable_grad(), HostReads() as counted:
            attack(inputs, Victim(denoiser, classifier))
        return counted.count

    short, long = reads(2), reads(12)
    assert short == long  # no read grows with the steps (12 iterations: 5 checkpoints)
    assert long <= 3  # the per-sample seeds of the start (1) and the loss history (2)


def test_the_random_start_is_per_sample_and_on_the_boundary(demo) -> None:
    victim, inputs = demo
    attack = _attack("apgd_ce", steps=0)
    start = attack(inputs, victim).delta
    assert torch.equal(start[1:], attack(inputs.select(torch.arange(4) > 0), victim).delta)
    inner = (inputs.noisy > EPS) & (inputs.noisy < 1 - EPS)  # where the box does not clip
    assert torch.equal(start.abs().amax(dim=(1, 2, 3)) <= EPS, torch.ones(4, dtype=torch.bool))
    assert (start.abs()[inner].max() - EPS).abs() < 1e-6
    overrides = ["attack=apgd_ce", "attack.steps=0", "attack.restart=1"]
    other = instantiate(compose_config(overrides).attack)
    assert not torch.equal(other(inputs, victim).delta, start)
