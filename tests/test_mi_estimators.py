"""Neural MI estimators against the closed form, critic checkpoints, and the attack term.

Correlated Gaussians a, b ∈ R^10 with per-coordinate correlation ρ have I(a; b) =
−d/2·log(1−ρ²); ρ is chosen for a target MI between 0.5 and 8 nats. Every fit is seeded (critic
initialisation, data, shuffles), so the numbers below are deterministic on one machine; the
tolerances leave a margin of several standard deviations of the seed-to-seed spread measured
when they were set.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from miga.attacks.state import AttackInputs, StepState, Victim
from miga.mi.critics import (
    ConvGaussianConditional,
    ConvPairCritic,
    FeatureSeparableCritic,
    GaussianConditional,
    MLPCritic,
    SeparableCritic,
)
from miga.mi.estimators import (
    CLUB,
    MINE,
    SMILE,
    CriticCheckpointError,
    InfoNCE,
    MINEf,
    logmeanexp,
)
from miga.mi.gaussian import (
    correlated_gaussians,
    fit_on_correlated_gaussians,
    rho_for_mi,
    true_mi,
)
from tests.conftest import MIGA_KNOBS, attack_knobs

DIM = 10


@pytest.fixture(autouse=True)
def _one_thread():
    """Small networks: one thread is as fast uncontended and far faster on a busy machine
    (two spinning threads per process thrash when other jobs share the cores), and it makes the
    numbers independent of the core count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _fit(estimator_factory, mi: float, steps: int, batch_size: int, eval_batch_size: int) -> float:
    torch.manual_seed(0)
    estimator = estimator_factory()
    return fit_on_correlated_gaussians(
        estimator,
        dim=DIM,
        rho=rho_for_mi(mi, DIM),
        steps=steps,
        batch_size=batch_size,
        lr=1e-3,
        seed=0,
        eval_batches=8,
        eval_batch_size=eval_batch_size,
    )


def _mlp() -> MLPCritic:
    return MLPCritic(DIM, DIM, hidden=128)


def _separable() -> SeparableCritic:
    return SeparableCritic(DIM, DIM, embed_dim=32, hidden=128)


def test_closed_form_helpers() -> None:
    assert true_mi(DIM, rho_for_mi(4.0, DIM)) == pytest.approx(4.0)
    a, b = correlated_gaussians(200_000, 2, 0.6, torch.Generator().manual_seed(0))
    assert torch.corrcoef(torch.stack([a[:, 0], b[:, 0]]))[0, 1] == pytest.approx(0.6, abs=0.01)


# --------------------------------------------------------------------------- lower bounds

# name: (estimator factory, training steps per true MI, batch size, held-out batch size)
LOWER = {
    "MINE": (lambda: MINE(_mlp(), marginals="shuffle"), {1.0: 400, 4.0: 1000}, 512, 4096),
    "MINE-f (NWJ)": (lambda: MINEf(_mlp(), marginals="shuffle"), {1.0: 400, 4.0: 2500}, 512, 4096),
    "SMILE": (lambda: SMILE(_separable(), marginals="pairs"), {1.0: 300, 4.0: 800}, 128, 512),
}


@pytest.mark.parametrize(
    "name,mi",
    [
        pytest.param(name, mi, marks=[pytest.mark.slow] if mi > 2 else [])
        for name in LOWER
        for mi in (1.0, 4.0)
    ],
)
def test_lower_bound_within_15_percent_of_truth(name: str, mi: float) -> None:
    factory, steps, batch, eval_batch = LOWER[name]
    estimate = _fit(factory, mi, steps[mi], batch, eval_batch)
    assert abs(estimate - mi) <= 0.15 * mi, f"{name}: {estimate:.3f} nats vs true {mi}"


@pytest.mark.parametrize(
    "mi,steps,batch",
    [(0.5, 300, 128), (2.0, 500, 128), pytest.param(4.0, 1000, 256, marks=pytest.mark.slow)],
)
def test_infonce_within_15_percent_below_truth(mi: float, steps: int, batch: int) -> None:
    eval_batch = 512
    assert mi < math.log(eval_batch)
    estimate = _fit(lambda: InfoNCE(_separable()), mi, steps, batch, eval_batch)
    assert 0.85 * mi <= estimate <= mi * 1.02, f"{estimate:.3f} nats vs true {mi}"


def test_infonce_saturates_at_log_batch() -> None:
    eval_batch = 128
    estimate = _fit(lambda: InfoNCE(_separable()), 8.0, 400, 128, eval_batch)
    assert estimate <= math.log(eval_batch) + 1e-5
    assert estimate > 0.8 * math.log(eval_batch)  # it got close to its ceiling


def test_infonce_is_bounded_by_log_batch_for_any_critic() -> None:
    torch.manual_seed(0)
    estimator = InfoNCE(MLPCritic(3, 3, hidden=16))
    a = torch.randn(16, 3)
    with torch.no_grad():
        estimator.critic.net[-1].weight.mul_(100.0)  # an arbitrary, very peaked critic
        assert float(estimator.estimate(a, a)) <= math.log(16) + 1e-5


# --------------------------------------------------------------------------- CLUB (upper bound)


@pytest.mark.parametrize("mi", [0.5, 2.0, 8.0])
def test_club_is_an_upper_bound(mi: float) -> None:
    estimate = _fit(lambda: CLUB(GaussianConditional(DIM, DIM, hidden=64)), mi, 400, 128, 512)
    rho = rho_for_mi(mi, DIM)
    assert estimate >= mi - 0.02 * mi
    # With q(b|a) the true conditional, CLUB = d·ρ²/(1−ρ²): loose at high MI (≈ 2× at low MI).
    assert estimate == pytest.approx(DIM * rho**2 / (1 - rho**2), rel=0.15)


def test_club_is_not_a_lower_bound() -> None:
    estimator = CLUB(GaussianConditional(2, 2, hidden=8))
    assert estimator.bound == "upper"
    with pytest.raises(TypeError, match="upper bound"):
        estimator.lower_bound(torch.randn(4, 2), torch.randn(4, 2))
    with pytest.raises(TypeError, match="conditional density"):
        CLUB(MLPCritic(2, 2))


# --------------------------------------------------------------------------- MINE's EMA gradient


def test_ema_correction_reduces_the_bias_of_the_dv_gradient() -> None:
    """On a fixed critic, the average minibatch gradient of the DV bound is biased (ratio of
    means); replacing the minibatch denominator E_Q[e^T] by its moving average removes most of
    the bias. Truth: the DV gradient on 2^18 samples."""
    dim, rho, batch, batches = 5, 0.7, 16, 1000
    torch.manual_seed(0)
    critic = MLPCritic(dim, dim, hidden=32, layers=1)
    with torch.no_grad():
        critic.net[-1].weight.mul_(6.0)  # spread the scores: e^T is skewed
    params = list(critic.parameters())

    def grad(loss: torch.Tensor) -> torch.Tensor:
        return torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])

    data = torch.Generator().manual_seed(1)
    a, b = correlated_gaussians(2**18, dim, rho, data)
    _, b_indep = correlated_gaussians(2**18, dim, rho, data)
    truth = grad(-(critic(a, b).mean() - logmeanexp(critic(a, b_indep))))

    def mean_gradient(estimator: MINE, warm_up: int) -> torch.Tensor:
        torch.manual_seed(2)
        gen = torch.Generator().manual_seed(3)
        for _ in range(warm_up):
            estimator.training_loss(*correlated_gaussians(batch, dim, rho, gen))
        total = torch.zeros_like(truth)
        for _ in range(batches):
            total += grad(estimator.training_loss(*correlated_gaussians(batch, dim, rho, gen)))
        return total / batches

    naive = mean_gradient(MINE(critic, ema_rate=None), warm_up=0)
    ema = mean_gradient(MINE(critic, ema_rate=0.01), warm_up=200)
    naive_bias = float((naive - truth).norm() / truth.norm())
    ema_bias = float((ema - truth).norm() / truth.norm())
    assert ema_bias < 0.5 * naive_bias, (naive_bias, ema_bias)


def test_mine_training_loss_value_is_the_plain_dv_and_estimate_is_untouched() -> None:
    torch.manual_seed(0)
    estimator = MINE(MLPCritic(4, 4, hidden=16), marginals="pairs", ema_rate=0.01)
    a, b = correlated_gaussians(32, 4, 0.5, torch.Generator().manual_seed(0))
    for _ in range(3):
        loss = estimator.training_loss(a, b)
    assert torch.isfinite(estimator.log_ema)
    assert float(loss.detach()) == pytest.approx(
        -float(estimator.estimate(a, b).detach()), abs=1e-5
    )


# --------------------------------------------------------------------------- critics


def test_pair_scores_agree_with_per_pair_scores() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(5, 6), torch.randn(5, 4)
    for critic in (
        MLPCritic(6, 4, hidden=8, pair_chunk=7),
        SeparableCritic(6, 4, embed_dim=3, hidden=8),
        GaussianConditional(6, 4, hidden=8),
    ):
        matrix = critic.pair_scores(a, b)
        assert matrix.shape == (5, 5)
        assert torch.allclose(matrix[1, 3], critic(a[1:2], b[3:4])[0], atol=1e-5)
        assert torch.allclose(matrix.diagonal(), critic(a, b), atol=1e-5)


def test_conv_pair_critic_layout_and_strict_reload(tmp_path) -> None:
    torch.manual_seed(0)
    critic = ConvPairCritic().eval()
    keys = list(critic.state_dict())
    assert keys[:2] == ["features.0.weight", "features.0.bias"]
    assert "features.21.running_var" in keys and keys[-1] == "classifier.4.bias"
    assert critic.classifier[0].in_features == 2048
    a, b = torch.rand(3, 3, 48, 48), torch.rand(3, 3, 80, 80)  # any size, resized to 64
    with torch.no_grad():
        scores = critic(a, b)
    assert scores.shape == (3,)

    path = tmp_path / "critic.pt"
    torch.save(critic.state_dict(), path)
    torch.manual_seed(1)
    estimator = MINE(ConvPairCritic(), checkpoint=str(path))
    with torch.no_grad():
        assert torch.equal(estimator.scores(a, b), scores)

    # A Lightning checkpoint: the critic's keys under a module prefix, next to other entries.
    ckpt = tmp_path / "critic.ckpt"
    state = {f"estimator.critic.{k}": v for k, v in critic.state_dict().items()}
    state["estimator.log_ema"] = torch.tensor(0.0)
    torch.save({"state_dict": state, "epoch": 3, "hyper_parameters": {"lr": 1e-4}}, ckpt)
    from_lightning = InfoNCE(ConvPairCritic(), checkpoint=str(ckpt))
    with torch.no_grad():
        assert torch.equal(from_lightning.scores(a, b), scores)


def test_critic_checkpoint_errors_name_the_file(tmp_path) -> None:
    missing = tmp_path / "nope.pt"
    with pytest.raises(CriticCheckpointError, match="nope.pt"):
        MINE(MLPCritic(2, 2, hidden=4), checkpoint=str(missing))
    wrong = tmp_path / "wrong.pt"
    torch.save(MLPCritic(3, 2, hidden=4).state_dict(), wrong)
    with pytest.raises(CriticCheckpointError, match="wrong.pt.*shape mismatch"):
        MINEf(MLPCritic(2, 2, hidden=4), checkpoint=str(wrong))
    extra = tmp_path / "extra.pt"
    torch.save({**MLPCritic(2, 2, hidden=4).state_dict(), "bonus": torch.zeros(1)}, extra)
    with pytest.raises(CriticCheckpointError, match="extra.pt.*unexpected.*bonus"):
        MINEf(MLPCritic(2, 2, hidden=4), checkpoint=str(extra))


def test_frozen_critic_stays_in_eval_mode(tmp_path) -> None:
    path = tmp_path / "critic.pt"
    torch.save(ConvPairCritic().state_dict(), path)
    estimator = SMILE(ConvPairCritic(), checkpoint=str(path))
    estimator.train()
    assert estimator.frozen and not estimator.critic.training
    assert not any(m.training for m in estimator.critic.modules())
    assert not any(p.requires_grad for p in estimator.critic.parameters())
    a = torch.rand(2, 3, 64, 64)
    with torch.no_grad():  # eval: BatchNorm uses running stats, dropout is off → repeatable
        assert torch.equal(estimator.scores(a, a.flip(0)), estimator.scores(a, a.flip(0)))


def _state(output: torch.Tensor, reference: torch.Tensor | None) -> StepState:
    n = output.shape[0]
    clean = torch.rand_like(output)
    inputs = AttackInputs(
        clean=clean,
        noisy=clean,
        denoised=clean,
        index=torch.arange(n),
        reference=reference,
    )
    return StepState(
        inputs=inputs,
        victim=Victim(denoiser=nn.Identity()),
        delta=torch.zeros_like(output),
        perturbed=clean,
        attacked=output,
    )


@pytest.mark.parametrize(
    "make", [lambda: MINE(ConvPairCritic()), lambda: CLUB(ConvGaussianConditional())]
)
def test_attack_loss_is_per_sample_and_differentiable_in_the_output(make, tmp_path) -> None:
    torch.manual_seed(0)
    estimator = make()
    path = tmp_path / "critic.pt"
    torch.save(estimator.critic.state_dict(), path)
    estimator.load_critic(path)
    output = torch.rand(3, 3, 40, 40, requires_grad=True)
    reference = torch.rand(3, 3, 40, 40)
    loss = estimator.attack_loss(_state(output, reference))
    assert loss.shape == (3,)
    with torch.no_grad():
        assert torch.allclose(loss, -estimator.scores(output, reference))
    loss.sum().backward()
    assert output.grad is not None and output.grad.abs().sum() > 0
    assert all(p.grad is None for p in estimator.critic.parameters())
    with pytest.raises(ValueError, match="reference"):
        estimator.attack_loss(_state(output, None))


def test_feature_separable_critic_keeps_its_backbone_frozen() -> None:
    torch.manual_seed(0)
    backbone = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    critic = FeatureSeparableCritic(backbone, embed_dim=4, hidden=16, input_size=32).train()
    assert not backbone.training and critic.g.training
    assert not any(p.requires_grad for p in backbone.parameters())
    a = torch.rand(4, 3, 40, 40, requires_grad=True)
    b = torch.rand(4, 3, 40, 40)
    matrix = critic.pair_scores(a, b)
    assert torch.allclose(matrix.diagonal(), critic(a, b), atol=1e-5)
    critic(a, b).sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0


def test_attack_through_a_random_critic_needs_allow_random() -> None:
    from functools import partial

    from miga.attacks.budgets import LinfBall
    from miga.attacks.miga import MIGA

    adam = partial(torch.optim.Adam, lr=0.01)
    # miga_unknown.yaml extends miga.yaml: its own two keys over the known-task ones
    knobs = {**attack_knobs("miga", *MIGA_KNOBS), **attack_knobs("miga_unknown", "lambda_mi")}
    knobs["rec_target"] = attack_knobs("miga_unknown", "rec_target")["rec_target"]

    with pytest.raises(CriticCheckpointError, match=r"mi_estimator\.checkpoint.*allow_random"):
        MIGA(MINE(ConvPairCritic()), steps=1, optimizer=adam, budget=LinfBall(4 / 255), **knobs)
    with pytest.raises(CriticCheckpointError, match=r"mi_estimator\.allow_random"):
        image = torch.rand(2, 3, 32, 32)
        MINE(ConvPairCritic()).attack_loss(_state(image, image))

    torch.manual_seed(0)
    estimator = MINE(ConvPairCritic(), allow_random=True)
    with pytest.warns(UserWarning, match="RANDOM critic"):
        attack = MIGA(estimator, steps=2, optimizer=adam, budget=LinfBall(4 / 255), **knobs)
    assert all(not p.requires_grad for p in estimator.critic.parameters())
    clean = torch.rand(2, 3, 32, 32)
    inputs = AttackInputs(clean, clean, clean, torch.arange(2), reference=torch.rand_like(clean))
    with torch.enable_grad():
        result = attack(inputs, Victim(denoiser=nn.Identity()))
    assert result is not None
    assert all(p.grad is None for p in estimator.critic.parameters())
