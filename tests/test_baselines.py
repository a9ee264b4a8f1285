"""Baselines at equal budget on the embedded demo, their budgets, and the comparison metrics.

The comparative claim of the paper, checked on the demo with a few steps: at the same budget,
PGD/ObsAtk lower PSNR(D(x_n+δ), x) more than MIGA does, while MIGA flips more labels.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn

from miga.attacks import PGDL2, RandomNoise
from miga.attacks.budgets import L2Ball, LinfBall, Unbounded
from miga.attacks.denoising_budgets import (
    CircumscribedL2Ball,
    GaussianLikeL2Ball,
    ZeroMeanL2Ball,
    zero_sum_clip,
)
from miga.attacks.state import AttackInputs, Victim
from miga.metrics.lpips import LPIPS, load_lpips
from miga.metrics.quality import psnr
from miga.metrics.scorers import DeltaPSNR, Outcome, TargetedSuccess
from miga.threats.noise import GaussianNoise
from tests.conftest import CONF, compose_config
from tests.helpers import make_outcome, run_miga

EPS = 4 / 255
STEPS = 3
RHO_128 = EPS * math.sqrt(3 * 128 * 128)  # the L2 ball around the L∞ budget at 128 px


@pytest.fixture(scope="module")
def inputs(demo_models, demo_batch) -> AttackInputs:
    denoiser, _ = demo_models
    clean, labels, index = (t[:7] for t in demo_batch)
    noisy = GaussianNoise(25.0)(clean, index, 0)
    with torch.no_grad():
        denoised = denoiser(noisy)
    return AttackInputs(clean, noisy, denoised, index, label=labels, seed=0)


@pytest.fixture(scope="module")
def run_attack(demo_models, inputs):
    """name → (attack, δ, D(x_n+δ)), each attack built from its real config, run once."""
    denoiser, classifier = demo_models
    cache: dict[str, tuple] = {}

    def run(name: str) -> tuple:
        if name not in cache:
            cfg = compose_config([f"attack={name}", f"attack.steps={STEPS}"])
            attack = instantiate(cfg.attack)
            with torch.enable_grad():
                delta = attack(inputs, Victim(denoiser, classifier)).delta
            with torch.no_grad():
                cache[name] = (attack, delta, denoiser(inputs.noisy + delta))
        return cache[name]

    return run


def _accuracy(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((classifier(images).argmax(1) == labels).float().mean())


def _valid(inputs: AttackInputs, delta: torch.Tensor) -> bool:
    perturbed = inputs.noisy + delta
    return bool(perturbed.min() >= 0 and perturbed.max() <= 1)


# --- every attack respects the shared budget ---------------------------------------------------


@pytest.mark.parametrize("name", ["miga", "ifgsm", "pgd", "random"])
def test_linf_attacks_stay_in_the_shared_budget(run_attack, inputs, name) -> None:
    attack, delta, _ = run_attack(name)
    assert attack.budget.epsilon == pytest.approx(EPS)
    assert delta.abs().max() <= EPS + 1e-6
    assert _valid(inputs, delta)


def test_pgd_l2_stays_in_the_l2_ball_around_the_budget(run_attack, inputs) -> None:
    _, delta, _ = run_attack("pgd_l2")
    norms = delta.flatten(1).norm(dim=1)
    assert (norms <= RHO_128 * (1 + 1e-5)).all()
    assert norms.min() > 0.5 * RHO_128  # random start + 3 steps of ρ/4 use the budget
    assert _valid(inputs, delta)


def test_obsatk_is_zero_mean_within_rho(run_attack, inputs) -> None:
    _, delta, _ = run_attack("obsatk")
    assert (delta.flatten(1).norm(dim=1) <= RHO_128 * (1 + 1e-5)).all()
    assert delta.flatten(1).mean(dim=1).abs().max() < 1e-7
    assert delta.abs().max() > EPS  # an L2 attack: single values may exceed the L∞ ε
    assert _valid(inputs, delta)


def test_denoising_pgd_keeps_the_noise_gaussian_like(run_attack, inputs) -> None:
    _, delta, _ = run_attack("denoising_pgd")
    assert (delta.flatten(1).norm(dim=1) <= RHO_128 * (1 + 1e-5)).all()
    assert delta.flatten(2).mean(dim=2).abs().max() < 1e-7  # zero mean per channel
    assert delta.abs().max() <= 0.5 * 25 / 255 + 1e-6  # |δ| ≤ σ/2 per value
    assert _valid(inputs, delta)


def test_none_leaves_the_input_alone(run_attack, inputs) -> None:
    _, delta, output = run_attack("none")
    assert delta.abs().max() == 0
    torch.testing.assert_close(output, inputs.denoised)


# --- what the attacks do -----------------------------------------------------------------------


def test_ifgsm_lowers_accuracy(run_attack, inputs, demo_models) -> None:
    _, classifier = demo_models
    _, _, output = run_attack("ifgsm")
    acc_denoised = _accuracy(classifier, inputs.denoised, inputs.label)
    assert _accuracy(classifier, output, inputs.label) <= acc_denoised - 0.4


@pytest.mark.parametrize("distorter", ["pgd", "obsatk"])
def test_distortion_attacks_lower_psnr_more_while_miga_flips_more_labels(
    run_attack, inputs, demo_models, distorter
) -> None:
    """The paper's comparative claim, at equal budget (demo, 7 photos, 3 steps each).

    Measured here: MIGA acc 0.00 / PSNR 28.3 dB; PGD acc 1.00 / 27.5 dB; ObsAtk 0.57 / 26.6 dB
    (acc on D(x_n) 0.86, PSNR 28.6 dB).
    """
    _, classifier = demo_models
    _, _, miga_out = run_attack("miga")
    _, _, other_out = run_attack(distorter)
    psnr_miga = float(psnr(miga_out, inputs.clean).mean())
    psnr_other = float(psnr(other_out, inputs.clean).mean())
    acc_miga = _accuracy(classifier, miga_out, inputs.label)
    acc_other = _accuracy(classifier, other_out, inputs.label)
    assert psnr_other < psnr_miga - 0.3, (psnr_other, psnr_miga)
    assert acc_miga < acc_other - 0.3, (acc_miga, acc_other)
    psnr_denoised = float(psnr(inputs.denoised, inputs.clean).mean())
    assert psnr_miga > psnr_denoised - 1.0  # MIGA's output still looks clean


def test_random_noise_of_equal_norm_barely_changes_accuracy(demo_models, demo_batch) -> None:
    denoiser, classifier = demo_models
    clean, labels, index = demo_batch
    noisy = GaussianNoise(25.0)(clean, index, 0)
    with torch.no_grad():
        denoised = denoiser(noisy)
    batch = AttackInputs(clean, noisy, denoised, index, label=labels, seed=0)
    attack = instantiate(compose_config(["attack=random"]).attack)
    delta = attack(batch, Victim(denoiser, classifier)).delta
    linf = delta.flatten(1).abs().amax(dim=1)
    assert linf.max() == pytest.approx(EPS) and (linf >= 0.9 * EPS).all()  # full budget norm
    with torch.no_grad():
        attacked = denoiser(noisy + delta)
    change = abs(_accuracy(classifier, attacked, labels) - _accuracy(classifier, denoised, labels))
    assert change <= 1 / 7 + 1e-6  # at most one photo in seven


def test_random_noise_l2_has_the_budget_norm_and_is_reproducible() -> None:
    noisy = torch.full((3, 3, 16, 16), 0.5)
    batch = AttackInputs(noisy, noisy, noisy, torch.arange(3), seed=1)
    attack = RandomNoise(L2Ball(1.0), distribution="gaussian")
    delta = attack(batch, Victim(nn.Identity())).delta
    torch.testing.assert_close(delta.flatten(1).norm(dim=1), torch.ones(3))
    torch.testing.assert_close(delta, attack(batch, Victim(nn.Identity())).delta)
    with pytest.raises(ValueError, match="bounded budget"):
        RandomNoise(Unbounded(), distribution="uniform")


def test_l2_steps_relative_to_rho_refuse_an_unbounded_budget() -> None:
    noisy = torch.full((1, 3, 4, 4), 0.5)
    batch = AttackInputs(noisy, noisy, noisy, torch.arange(1))
    attack = PGDL2(1, CircumscribedL2Ball(Unbounded()), step_fraction=0.25, random_start=False)
    with pytest.raises(ValueError, match="bounded budget"), torch.enable_grad():
        attack(batch, Victim(nn.Identity()))


# --- the denoising budgets ----------------------------------------------------------------------


def test_rho_is_computed_per_image_from_its_size() -> None:
    ball = ZeroMeanL2Ball(LinfBall(5 / 255))
    assert ball.radius(3 * 224 * 224) == pytest.approx(5 / 255 * math.sqrt(3 * 224 * 224))
    assert ball.radius(torch.zeros(2, 3, 8, 8)) == pytest.approx(5 / 255 * math.sqrt(192))
    assert CircumscribedL2Ball(L2Ball(3.0)).radius(10**6) == 3.0


def test_zero_mean_projection_is_exact_when_nothing_clips() -> None:
    noisy = torch.full((2, 3, 4, 4), 0.5)
    delta = torch.randn(2, 3, 4, 4) * 0.01
    projected = ZeroMeanL2Ball(LinfBall(1.0)).project(delta, noisy)
    expected = delta - delta.flatten(1).mean(dim=1).view(-1, 1, 1, 1)
    torch.testing.assert_close(projected, expected)


def test_zero_mean_projection_with_saturated_pixels_and_gaussian_like_cap() -> None:
    generator = torch.Generator().manual_seed(0)
    noisy = torch.rand(4, 3, 8, 8, generator=generator)
    noisy[noisy < 0.2], noisy[noisy > 0.8] = 0.0, 1.0
    delta = torch.randn(4, 3, 8, 8, generator=generator) * 0.3 + 0.1
    for ball, groups in (
        (ZeroMeanL2Ball(LinfBall(EPS)), 1),
        (GaussianLikeL2Ball(LinfBall(EPS), 25), 3),
    ):
        projected = ball.project(delta, noisy)
        rows = projected.reshape(4, groups, -1)
        assert rows.mean(dim=2).abs().max() < 1e-7
        assert (projected.flatten(1).norm(dim=1) <= ball.radius(projected) * (1 + 1e-5)).all()
        assert _valid(AttackInputs(noisy, noisy, noisy, torch.arange(4)), projected)
        torch.testing.assert_close(ball.project(projected, noisy), projected, atol=1e-6, rtol=0)
    assert GaussianLikeL2Ball(LinfBall(EPS), 25).project(delta, noisy).abs().max() <= 12.5 / 255


def test_zero_sum_clip_by_hand() -> None:
    delta = torch.tensor([[[0.5, -0.1, 0.2, 0.9]]])
    low, high = torch.full_like(delta, -0.2), torch.full_like(delta, 0.3)
    # shift μ = 0.4: clip([0.1, −0.5, −0.2, 0.5], −0.2, 0.3) = [0.1, −0.2, −0.2, 0.3], Σ = 0
    result = zero_sum_clip(delta, low, high)
    torch.testing.assert_close(result, torch.tensor([[[0.1, -0.2, -0.2, 0.3]]]))


def test_obsatk_takes_steps_of_0_3_rho() -> None:
    generator = torch.Generator().manual_seed(0)
    wiggle = torch.randn(2, 3, 8, 8, generator=generator) * 0.05
    clean = 0.5 + wiggle - wiggle.flatten(1).mean(1).view(-1, 1, 1, 1)  # x_n − x is zero-mean
    noisy = torch.full_like(clean, 0.5)
    batch = AttackInputs(clean, noisy, noisy, torch.arange(2))
    budget = ZeroMeanL2Ball(LinfBall(EPS))
    for steps in (1, 2):
        obsatk = instantiate(compose_config(["attack=obsatk"]).attack, budget=budget, steps=steps)
        delta = obsatk(batch, Victim(nn.Identity())).delta
        rho = budget.radius(delta)
        torch.testing.assert_close(
            delta.flatten(1).norm(dim=1), torch.full((2,), 0.3 * rho * steps)
        )


# --- comparison metrics --------------------------------------------------------------------------


def _outcome(classifier=None, label=None) -> Outcome:
    clean = torch.full((2, 3, 32, 32), 0.5)
    denoised = clean + 0.01
    attacked = torch.stack([clean[0] + 0.01, clean[1] + 0.1])
    return make_outcome(
        clean,
        denoised=denoised,
        attacked=attacked,
        delta=torch.zeros(2),
        label=label,
        downstream=classifier,
    )


def test_delta_psnr_is_the_quality_the_attack_costs() -> None:
    columns = DeltaPSNR()(_outcome())
    torch.testing.assert_close(columns["delta_psnr"], torch.tensor([0.0, 20.0]))


def test_targeted_success_only_with_a_target_class() -> None:
    class Fixed(nn.Module):  # class 1 for bright images, class 0 otherwise
        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return F.one_hot((image.mean(dim=(1, 2, 3)) > 0.55).long(), 4).float()

    outcome = _outcome(Fixed(), label=torch.tensor([0, 1]))
    assert TargetedSuccess(None)(outcome) == {}
    columns = TargetedSuccess(target_class=1)(outcome)
    torch.testing.assert_close(columns["target_hit"], torch.tensor([0.0, 1.0]))
    assert columns["targeted_success"][0] == 0 and math.isnan(columns["targeted_success"][1])


def test_lpips_is_opt_in_from_local_weights(tmp_path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="miga.metrics.lpips"):
        assert LPIPS(checkpoint=None)(_outcome()) == {}
    assert "LPIPS skipped" in caplog.text
    with pytest.raises(FileNotFoundError, match="LPIPS backbone weights not found"):
        LPIPS(checkpoint=str(tmp_path / "absent.pth"))
    import torchvision

    weights = tmp_path / "alexnet.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), weights)
    columns = LPIPS(checkpoint=str(weights))(_outcome())
    assert columns["lpips_attacked"].shape == (2,) and (columns["lpips_attacked"] >= 0).all()
    image = torch.rand(2, 3, 32, 32)
    identical = load_lpips(weights)(image, image, normalize=True).flatten()
    torch.testing.assert_close(identical, torch.zeros(2))


# --- end to end ---------------------------------------------------------------------------------

#: Every known-task attack of conf/attack/ (a new attack is its YAML: it joins these tests and
#: must join experiment=baselines); MIGA's unknown-task variant needs pairs and a critic, the
#: authors' presets VGG16 weights (tests/test_authors_protocol.py). Square (a query budget, no
#: steps) and the worst-case ensemble are not baselines at equal steps: tests/test_worst_case.py.
KNOWN_TASK_ATTACKS = sorted(
    p.stem
    for p in (CONF / "attack").glob("*.yaml")
    if p.stem
    not in ("miga_unknown", "miga_authors", "miga_unknown_authors", "square", "worst_case")
)
NEW_ATTACKS = [a for a in KNOWN_TASK_ATTACKS if a != "miga"]
SWEEP = "experiment=baselines"


def _miga_run(overrides: list[str]) -> subprocess.CompletedProcess:
    return run_miga(*overrides)


@pytest.fixture(scope="module")
def e2e(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`python -m miga.run -m experiment=baselines` on 2 images, 2 steps: every attack's cell,
    run as users run them (one multirun: the single cells would repeat its start-up 8 times)."""
    root = tmp_path_factory.mktemp("e2e")
    overrides = ["-m", SWEEP, "attack.steps=2", "dataset.limit=2", "logger=none"]
    return root, _miga_run([*overrides, f"hydra.sweep.dir={root}"])


def _cells(run: tuple[Path, subprocess.CompletedProcess]) -> dict[str, Path]:
    """attack choice → its finished cell folder."""
    folder, process = run
    assert process.returncode == 0, process.stderr[-3000:]
    return {
        json.loads((p.parent / "provenance.json").read_text())["choices"]["attack"]: p.parent
        for p in folder.rglob("summary.json")
    }


@pytest.mark.slow
@pytest.mark.parametrize("attack", NEW_ATTACKS)
def test_each_attack_runs_end_to_end(e2e, attack: str) -> None:
    summary = json.loads((_cells(e2e)[attack] / "summary.json").read_text())
    assert summary["n_images"] == 2
    assert "delta_psnr" in summary and "acc_attacked" in summary
    if attack in ("ifgsm", "pgd", "random", "apgd_ce", "apgd_dlr", "apgd_t"):
        assert summary["linf_max"] <= EPS + 1e-6
    else:
        assert summary["l2_max"] <= RHO_128 * (1 + 1e-5)


@pytest.mark.slow
def test_baselines_experiment_runs_every_attack_at_equal_budget(e2e) -> None:
    summaries = sorted(p / "summary.json" for p in _cells(e2e).values())
    configs = [json.loads((p.parent / "provenance.json").read_text())["config"] for p in summaries]
    assert sorted(_cells(e2e)) == KNOWN_TASK_ATTACKS  # the experiment lists every attack
    targets = sorted(c["attack"]["_target_"].rsplit(".", 1)[1] for c in configs)
    assert targets == sorted(
        ["MIGA", "IFGSM", "PGD", "PGDL2", "ObsAtk", "DenoisingPGD", "RandomNoise", "NoAttack"]
        + ["APGD"] * 3
    )
    assert all(c["budget"] == configs[0]["budget"] for c in configs)
    for path in summaries:
        assert json.loads(path.read_text())["n_images"] == 2
