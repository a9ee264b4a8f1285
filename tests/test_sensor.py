"""The sensor threat model (miga.threats.sensor): noise draws the attacker does not control.

Checked against independent computations: the draws' streams (independent of each other, of K
and of the batch), the EOT loss as the hand-written mean over K draws of x+n_k+δ, the denoiser
seeing exactly K·B attack views and the M evaluation views clamp(x+n_m+δ), and the summary's
reductions over draws on a hand-computed table.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from miga.attacks.base import Attack
from miga.attacks.budgets import Unbounded
from miga.attacks.state import AttackInputs, Victim
from miga.attacks.terms import OutputDistortion
from miga.metrics.intervals import bootstrap_mean
from miga.metrics.summary import sensor_summary, summarize
from miga.run import build_module
from miga.threats.noise import GaussianNoise
from miga.threats.sensor import SensorNoise
from tests.conftest import compose_config

SEED = 3


def _denoiser() -> nn.Module:
    """A small random conv net: smooth, so the gradient through it is informative."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, 3, 3, padding=1))
    return net.eval().requires_grad_(False)


def _clean(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return 0.2 + 0.6 * torch.rand(n, 3, 16, 16, generator=gen), torch.arange(10, 10 + n)


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1])


def test_attack_and_evaluation_draws_are_independent_streams() -> None:
    clean, index = _clean()
    noise = GaussianNoise(sigma=25, clip=False)
    sensor = SensorNoise(noise, attack_draws=4, eval_draws=2)
    own = noise(clean, index, SEED) - clean
    attack = sensor.attack_noisy(clean, index, SEED, step=0) - clean.repeat(4, 1, 1, 1)
    evaluation = [sensor.eval_noisy(clean, index, SEED, m) - clean for m in range(2)]
    assert attack.shape == (16, 3, 16, 16)
    views = [own, *attack.chunk(4), *evaluation]
    for i, a in enumerate(views):
        assert float(a.std()) == pytest.approx(25 / 255, rel=0.05)  # each is a σ=25 draw
        for b in views[i + 1 :]:
            assert abs(_corr(a, b)) < 0.05
    # step s draws differ from step s+1's
    later = sensor.attack_noisy(clean, index, SEED, step=1) - clean.repeat(4, 1, 1, 1)
    assert abs(_corr(attack, later)) < 0.05


def test_a_draw_depends_on_its_image_not_on_k_or_the_batch() -> None:
    clean, index = _clean()
    noise = GaussianNoise(sigma=25)
    two = SensorNoise(noise, attack_draws=2).attack_noisy(clean, index, SEED, step=5)
    four = SensorNoise(noise, attack_draws=4).attack_noisy(clean, index, SEED, step=5)
    torch.testing.assert_close(two, four[:8], rtol=0, atol=0)  # draw k is draw k, whatever K
    alone = SensorNoise(noise, attack_draws=2).attack_noisy(clean[2:3], index[2:3], SEED, 5)
    torch.testing.assert_close(alone, two[[2, 6]], rtol=0, atol=0)  # draw-major rows k·B + i
    sensor = SensorNoise(noise, eval_draws=3)
    torch.testing.assert_close(
        sensor.eval_noisy(clean[1:2], index[1:2], SEED, 2),
        sensor.eval_noisy(clean, index, SEED, 2)[1:2],
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize("draws", [1, 3])
def test_the_eot_step_descends_the_mean_loss_over_k_draws(draws: int) -> None:
    """One SGD step (lr 1) from δ=0 is minus the gradient of the mean over the K views of
    −MSE(D(clamp(x+n_k+δ)), x), written out here with autograd on the stacked views, then
    projected onto the image box around the cell's x_n (the budget's box)."""
    denoiser = _denoiser()
    clean, index = _clean()
    sensor = SensorNoise(GaussianNoise(sigma=25), attack_draws=draws)
    noisy = GaussianNoise(sigma=25)(clean, index, SEED)
    inputs = AttackInputs(clean, noisy, denoiser(noisy), index, seed=SEED)
    attack = Attack(
        {"distortion": OutputDistortion()},
        {},
        1,
        partial(torch.optim.SGD, lr=1.0),
        budget=Unbounded(),
    )
    with torch.enable_grad():
        result = attack(inputs, Victim(denoiser), sensor)

    delta = torch.zeros_like(clean, requires_grad=True)
    views = sensor.attack_noisy(clean, index, SEED, step=0)
    losses = [
        -((denoiser((v + delta).clamp(0, 1)) - clean) ** 2).flatten(1).mean(1)
        for v in views.chunk(draws)
    ]
    torch.stack(losses).mean(0).sum().backward()
    stepped = (noisy - delta.grad).clamp(0, 1) - noisy  # δ keeps the cell's x_n+δ an image
    assert float(stepped.abs().max()) > 1e-4
    torch.testing.assert_close(result.delta, stepped, rtol=0, atol=1e-7)  # x_n+δ−x_n rounding


def test_without_attack_draws_the_attack_is_the_white_box_one() -> None:
    denoiser = _denoiser()
    clean, index = _clean()
    noisy = GaussianNoise(sigma=25)(clean, index, SEED)
    inputs = AttackInputs(clean, noisy, denoiser(noisy), index, seed=SEED)
    attack = Attack({"distortion": OutputDistortion()}, {}, 3, partial(torch.optim.Adam, lr=0.01))
    with torch.enable_grad():
        plain = attack(inputs, Victim(denoiser))
        k0 = attack(inputs, Victim(denoiser), SensorNoise(GaussianNoise(25), attack_draws=0))
    torch.testing.assert_close(plain.delta, k0.delta, rtol=0, atol=0)


def test_the_module_attacks_on_k_views_and_scores_m_fresh_ones() -> None:
    """Hooks record the victim denoiser's inputs: 2 steps of K·B views with a graph, then
    D(x_n), D(x_n+δ) and, per evaluation draw m, D(x+n_m) and D(clamp(x+n_m+δ))."""
    module = build_module(
        compose_config(
            [
                "attack.steps=2",
                "metrics.lpips_checkpoint=null",
                "sensor=unknown_noise",
                "sensor.attack_draws=3",
                "sensor.eval_draws=2",
            ]
        )
    )
    from tests.test_transfer import _batch

    batch = _batch(2)
    seen: list[tuple[torch.Tensor, bool]] = []
    module.denoiser.register_forward_hook(
        lambda m, i, o: seen.append((i[0].detach().clone(), o.requires_grad))
    )
    with torch.no_grad():
        out = module.predict_step(batch, 0)
    calls = [(len(x), grad) for x, grad in seen]
    assert calls == [(2, False)] + [(6, True)] * 2 + [(2, False)] * 5
    sensor, delta, clean = module.sensor, out["images"]["delta"], batch["image"]
    expected_first = sensor.observe(
        sensor.attack_noisy(clean, batch["index"], module.seed, 0), torch.zeros(6, 3, 1, 1)
    )
    torch.testing.assert_close(seen[1][0], expected_first)  # δ₀ = 0: the first step's views
    for m in range(2):
        fresh = sensor.eval_noisy(clean, batch["index"], module.seed, m)
        torch.testing.assert_close(seen[4 + 2 * m][0], fresh, rtol=0, atol=0)
        torch.testing.assert_close(seen[5 + 2 * m][0], (fresh + delta).clamp(0, 1))
        with torch.no_grad():
            label = module.downstream(module.denoiser((fresh + delta).clamp(0, 1))).argmax(1)
        assert out["columns"][f"sensor{m}_correct_attacked"].tolist() == (
            (label == batch["label"]).float().tolist()
        )
    assert "sensor2_correct_attacked" not in out["columns"]


def test_the_sensor_summary_reduces_draws_then_images() -> None:
    # 3 images × 2 draws of `success` (nanmean) and `correct_attacked` (mean); NaN: no success
    # defined (the image was misclassified before the attack)
    table = {
        "success": [[1.0, 0.0], [math.nan, math.nan], [1.0, 1.0]],
        "correct_attacked": [[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]],
    }
    rows = [
        {f"sensor{m}_{col}": table[col][i][m] for col in table for m in range(2)} for i in range(3)
    ]
    out = sensor_summary(rows, seed=0)
    assert out["sensor_success_rate_draws"] == [1.0, 0.5]
    assert out["sensor_success_rate"] == pytest.approx(0.75)
    assert out["sensor_success_rate_std"] == pytest.approx(math.sqrt(0.125))
    assert out["sensor_success_rate_ci95"] == list(bootstrap_mean([0.5, math.nan, 1.0], 0))
    assert out["sensor_acc_attacked_draws"] == pytest.approx([1 / 3, 2 / 3])
    assert out["sensor_acc_attacked"] == pytest.approx(0.5)
    assert "sensor_psnr_attacked" not in out  # not scored per draw: no key
    assert summarize(rows)["sensor_success_rate"] == out["sensor_success_rate"]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"attack_draws": -1}, "sensor.attack_draws must be an integer >= 0"),
        ({"attack_draws": 1.5}, "sensor.attack_draws must be an integer >= 0"),
        ({"eval_draws": 0}, "sensor.eval_draws must be >= 1"),
    ],
)
def test_bad_draw_counts_name_the_key(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SensorNoise(GaussianNoise(), **kwargs)


def test_the_report_tabulates_seen_and_fresh_success_per_attack_and_k(tmp_path) -> None:
    from miga.report import Cell
    from miga.report.sections.sensor import sections as sensor_sections

    def cell(attack: str, k: int, seen: float, fresh: list[float]) -> Cell:
        summary = {"success_rate": seen, **sensor_summary([], 0)}
        summary.update(
            sensor_success_rate=float(np.mean(fresh)),
            sensor_success_rate_std=float(np.std(fresh, ddof=1)),
            sensor_success_rate_draws=fresh,
        )
        params = {"attack": attack, "sensor.attack_draws": str(k)}
        return Cell(tmp_path / f"{attack}{k}", {"attack": attack}, summary, 14, params)

    cells = [
        cell("miga", 4, 1.0, [0.9, 0.7]),
        cell("miga", 0, 1.0, [0.5, 0.3]),
        cell("ifgsm", 0, 0.8, [0.2, 0.2]),
        Cell(tmp_path / "plain", {"attack": "pgd"}, {"success_rate": 0.1}, 14, {}),
    ]
    (section,) = sensor_sections(cells, tmp_path)
    lines = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert lines == [
        "| ifgsm | white-box δ (0) | 0.80 | 0.20 | 0.00 | 2 | — |",
        "| miga | white-box δ (0) | 1.00 | 0.40 | 0.14 | 2 | — |",
        "| miga | 4 | 1.00 | 0.80 | 0.14 | 2 | — |",
    ]  # sorted by attack then K; the cell without sensor columns is left out
    assert (tmp_path / "sensor_success.png").stat().st_size > 1000
    assert sensor_sections(cells[3:], tmp_path) == []
