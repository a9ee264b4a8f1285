"""Every budget holds ‖δ‖ ≤ ε for every input, also where x_n leaves [0,1] (unclipped noise).

Before the fix the [0,1] clamp after the ε-projection made |δ| as large as x_n's overshoot
(a demo cell with `noise.clip=false noise.sigma=50` wrote ‖δ‖∞ = 183.9/255 at ε = 4/255).
"""

from __future__ import annotations

import math

import pytest
import torch
from hydra.utils import instantiate

from miga.attacks.budgets import L2Ball, LinfBall
from miga.attacks.denoising_budgets import (
    CircumscribedL2Ball,
    GaussianLikeL2Ball,
    ZeroMeanL2Ball,
)
from miga.attacks.state import AttackInputs, Victim
from miga.threats.noise import GaussianNoise
from tests.conftest import compose_config

EPS = 4 / 255
SHAPE = (3, 3, 16, 16)
NUMEL = 3 * 16 * 16


def _unclipped_noisy() -> torch.Tensor:
    clean = torch.rand(SHAPE, generator=torch.Generator().manual_seed(0))
    noisy = GaussianNoise(sigma=50, clip=False)(clean, torch.arange(SHAPE[0]), seed=0)
    assert (noisy < 0).any() and (noisy > 1).any()  # the case under test
    return noisy


BUDGETS = {
    "linf": (LinfBall(EPS), "linf", EPS),
    "l2": (L2Ball(3.0), "l2", 3.0),
    "circumscribed": (CircumscribedL2Ball(LinfBall(EPS)), "l2", EPS * math.sqrt(NUMEL)),
    "zero_mean": (ZeroMeanL2Ball(LinfBall(EPS)), "l2", EPS * math.sqrt(NUMEL)),
    "gaussian_like": (GaussianLikeL2Ball(LinfBall(EPS), sigma=50), "l2", EPS * math.sqrt(NUMEL)),
}


def _size(delta: torch.Tensor, norm: str) -> torch.Tensor:
    flat = delta.flatten(1)
    return flat.abs().amax(dim=1) if norm == "linf" else flat.norm(dim=1)


@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_projection_holds_the_norm_for_inputs_outside_the_unit_box(name: str) -> None:
    budget, norm, bound = BUDGETS[name]
    noisy = _unclipped_noisy()
    delta = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1)) * 0.5
    projected = budget.project(delta, noisy)
    assert (_size(projected, norm) <= bound * (1 + 1e-5)).all()
    # The box is [min(0, x_n), max(1, x_n)]: no value is pushed further out of [0,1] than x_n.
    perturbed = noisy + projected
    assert (perturbed >= torch.minimum(noisy, torch.zeros_like(noisy)) - 1e-6).all()
    assert (perturbed <= torch.maximum(noisy, torch.ones_like(noisy)) + 1e-6).all()
    if name in ("zero_mean", "gaussian_like"):
        groups = 3 if name == "gaussian_like" else 1
        means = projected.reshape(SHAPE[0], groups, -1).mean(dim=2)
        assert means.abs().max() < 1e-6


def test_inside_the_unit_box_the_projection_is_the_plain_clamp() -> None:
    """For x_n in [0,1] the rule is the usual one: x_n+δ clamped to [0,1]."""
    noisy = torch.rand(SHAPE, generator=torch.Generator().manual_seed(2))
    delta = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3)) * 0.05
    expected = (noisy + delta.clamp(-EPS, EPS)).clamp(0, 1) - noisy
    torch.testing.assert_close(LinfBall(EPS).project(delta, noisy), expected, atol=1e-7, rtol=0)


@pytest.mark.parametrize("attack", ["miga", "ifgsm", "pgd", "obsatk", "random"])
def test_attacks_keep_the_budget_with_unclipped_sigma_50_noise(demo_models, attack) -> None:
    """The configured attacks themselves (as `miga.run` builds them) under `noise.clip=false`."""
    cfg = compose_config(
        [f"attack={attack}", "noise.clip=false", "noise.sigma=50", "attack.steps=2"]
        if attack != "random"
        else ["attack=random", "noise.clip=false", "noise.sigma=50"]
    )
    denoiser, classifier = demo_models
    clean = torch.rand((2, 3, 32, 32), generator=torch.Generator().manual_seed(4))
    index = torch.arange(2)
    noisy = instantiate(cfg.noise)(clean, index, 0)
    assert (noisy < 0).any()
    with torch.no_grad():
        denoised = denoiser(noisy)
    inputs = AttackInputs(clean, noisy, denoised, index, label=torch.tensor([281, 967]))
    with torch.enable_grad():
        result = instantiate(cfg.attack)(inputs, Victim(denoiser, classifier))
    linf = result.delta.flatten(1).abs().amax(dim=1)
    if attack == "obsatk":
        bound = EPS * math.sqrt(clean[0].numel())
        assert (result.delta.flatten(1).norm(dim=1) <= bound * (1 + 1e-5)).all()
    else:
        assert (linf <= EPS * (1 + 1e-5)).all(), linf * 255


def test_the_l2_random_start_points_in_a_sphere_uniform_direction() -> None:
    """A normalised Gaussian draw, not a cube's: its entries' kurtosis is 3 (a cube's: 1.8),
    its radius is uniform in [0, ε] and every sample draws its own."""
    noisy = torch.full((64, 3, 32, 32), 0.5)
    start = L2Ball(2.0).random_start(noisy, torch.arange(64), seed=0)
    radius = start.flatten(1).norm(dim=1)
    assert float(radius.max()) <= 2.0 + 1e-5 and float(radius.min()) < 0.5
    assert 0.8 < float(radius.mean()) < 1.2  # uniform on [0, 2]: mean 1
    entries = (start.flatten(1) / radius[:, None]).flatten()
    kurtosis = float(((entries - entries.mean()) ** 4).mean() / entries.var() ** 2)
    assert abs(kurtosis - 3.0) < 0.1, kurtosis


def test_budgets_answer_their_own_size_radius_and_bound() -> None:
    """By hand: δ with one value 0.3 and three 0.1 (4 values) → L∞ size 0.3, L2 size √0.12."""
    from miga.attacks.budgets import Unbounded

    delta = torch.tensor([0.3, -0.1, 0.1, 0.1]).view(1, 1, 2, 2)
    linf, l2 = LinfBall(0.5), L2Ball(0.2)
    assert linf.size(delta).item() == pytest.approx(0.3)
    assert l2.size(delta).item() == pytest.approx(math.sqrt(0.12))
    assert (linf.bound(4), l2.bound(4)) == (0.5, 0.2)
    assert linf.l2_radius(4) == pytest.approx(1.0)  # 0.5·√4: the cube's corner
    assert Unbounded().l2_radius(4) == math.inf
    ring = CircumscribedL2Ball(CircumscribedL2Ball(linf))  # nesting changes nothing
    assert ring.l2_radius(4) == ring.bound(4) == pytest.approx(1.0)
    assert ring.size(delta).item() == pytest.approx(math.sqrt(0.12))
