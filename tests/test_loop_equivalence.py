"""The attack loop that never waits on the host gives the rows the earlier loop gave, bit for
bit on CPU (tests/reference_loop.py keeps that loop verbatim), and its per-step path reads
nothing back from the device unless a stopping rule asks it to.

Every attack of conf/attack runs through the demo denoiser and classifier on four 32×32 crops;
the stopping rule, a NaN mid-attack (with and without stopping) and the sensor model's EOT
views are the paths where the two loops could part.
"""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from miga.attacks import terms
from miga.attacks.base import Attack, AttackResult, StopWhenMisclassified
from miga.attacks.state import AttackInputs, Victim
from miga.data.sensor import SensorNoise
from miga.utils.host_reads import HostReads
from tests.conftest import CONF, compose_config
from tests.reference_loop import reference_forward, reference_mse
from tests.test_attack_loop import NaNFromStep

ITERATIVE = sorted(
    path.stem
    for path in (CONF / "attack").glob("*.yaml")
    if path.stem not in ("none", "random", "miga_unknown")  # no loop / another task
    # APGD's step rule needs the loop's step_rule/observe hooks, which the reference loop
    # predates: tests/test_apgd.py holds it to torchattacks' APGD instead
    and path.stem not in ("apgd_ce", "apgd_dlr", "apgd_t")
)


@pytest.fixture(scope="module")
def setting(demo_models, demo_batch) -> tuple[Victim, AttackInputs]:
    denoiser, downstream = demo_models
    clean, label, index = (t[:4] for t in demo_batch)
    clean = clean[..., 40:72, 40:72].contiguous()
    gen = torch.Generator().manual_seed(3)
    noisy = (clean + 25 / 255 * torch.randn(clean.shape, generator=gen)).clamp(0, 1)
    with torch.no_grad():
        denoised = denoiser(noisy)
        label = downstream(denoised).argmax(1)  # right on D(x_n): every sample can be flipped
    return Victim(denoiser, downstream), AttackInputs(clean, noisy, denoised, index, label, seed=0)


def _attack(name: str, steps: int = 4) -> Attack:
    cfg = compose_config([f"attack={name}", f"attack.steps={steps}"])
    return instantiate(cfg.attack)


def _both(attack: Attack, setting, sensor: SensorNoise | None = None, fresh=None):
    """(today's loop and terms, the reference loop and MSE) on the same attack; `fresh`
    rebuilds stateful terms before each run."""
    victim, inputs = setting
    results = []
    for run, mse in ((Attack.forward, terms.per_sample_mse), (reference_forward, reference_mse)):
        if fresh is not None:
            fresh(attack)
        torch.manual_seed(0)
        with pytest.MonkeyPatch.context() as patch, torch.enable_grad():
            patch.setattr(terms, "per_sample_mse", mse)
            results.append(run(attack, inputs, victim, sensor))
    return results


def _identical(new: AttackResult, old: AttackResult) -> None:
    assert torch.equal(new.delta, old.delta)
    assert torch.equal(new.steps, old.steps)
    assert torch.equal(new.flagged, old.flagged)
    assert torch.equal(new.stopped, old.stopped)
    assert len(new.loss_history) == len(old.loss_history)
    torch.testing.assert_close(new.loss_history, old.loss_history, rtol=1e-6, atol=0)


@pytest.mark.parametrize("name", ITERATIVE)
def test_every_attack_gives_the_reference_rows(name: str, setting) -> None:
    new, old = _both(_attack(name), setting)
    assert new.delta.abs().sum() > 0  # it did attack
    _identical(new, old)


def test_the_stopping_rule_gives_the_reference_rows(setting) -> None:
    attack = _attack("miga", steps=6)
    attack.stopping = StopWhenMisclassified()
    new, old = _both(attack, setting)
    assert 0 < int(new.stopped.sum()) and int(new.steps.min()) < 6  # some stopped early
    _identical(new, old)


@pytest.mark.parametrize("stopping", [False, True])
def test_a_nan_gives_the_reference_rows(stopping: bool, setting) -> None:
    attack = _attack("miga", steps=6)
    attack.stopping = StopWhenMisclassified() if stopping else None
    attack.weights["nan"] = 1.0

    def fresh(attack: Attack) -> None:
        attack.terms["nan"] = NaNFromStep(index=int(setting[1].index[1]), first=1)

    new, old = _both(attack, setting, fresh=fresh)
    assert new.flagged.tolist() == [False, True, False, False] and int(new.steps[1]) == 0
    _identical(new, old)


def test_sensor_views_give_the_reference_rows(setting) -> None:
    cfg = compose_config(["sensor=unknown_noise", "sensor.attack_draws=2"])
    attack = _attack("miga", steps=3)
    attack.stopping = StopWhenMisclassified()
    new, old = _both(attack, setting, sensor=instantiate(cfg.sensor))
    _identical(new, old)


def _reads(attack: Attack, setting) -> int:
    victim, inputs = setting
    with torch.enable_grad(), HostReads(under="miga/") as reads:
        attack(inputs, victim)
    return reads.count


@pytest.mark.parametrize("name", ["miga", "ifgsm", "pgd"])
def test_without_a_stopping_rule_the_loop_reads_the_device_once_per_batch(name, setting) -> None:
    short, long = _reads(_attack(name, steps=2), setting), _reads(_attack(name, steps=6), setting)
    assert short == long  # no read grows with the steps: only the batch's end reads
    assert long <= 3  # the loss history (2) and a random start's per-sample seeds (1)


def test_a_stopping_rule_reads_the_device_every_step(setting) -> None:
    attack = _attack("miga", steps=6)
    attack.stopping = StopWhenMisclassified()
    reads = _reads(attack, setting)
    attack.steps = 2
    assert reads > _reads(attack, setting)  # the host read that shrinks the sub-batch
