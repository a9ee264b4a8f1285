"""experiment=strength/stepsize/ablation/ablation_unknown compose into the documented cells, and a
tiny real sweep through `python -m miga.run -m` and `python -m miga.report` draws the curves."""

from __future__ import annotations

from pathlib import Path

import pytest

from miga.report import main as report_main
from tests.conftest import compose_config
from tests.helpers import run_miga

EPSILONS = [e / 255 for e in (0.125, 0.25, 0.5, 1, 2, 4, 8, 16)]


def _params(experiment: str) -> dict[str, list[str]]:
    cfg = compose_config([f"experiment={experiment}"])
    return {k: str(v).split(",") for k, v in cfg.hydra.sweeper.params.items()}


def test_strength_sweeps_every_attack_over_eight_epsilons() -> None:
    params = _params("strength")
    assert params["attack"] == [
        "miga",
        "ifgsm",
        "pgd",
        "pgd_l2",
        "obsatk",
        "denoising_pgd",
        "random",
    ]
    assert [float(e) for e in params["budget.epsilon"]] == pytest.approx(EPSILONS)


def test_stepsize_grid_is_at_equal_epsilon_and_steps() -> None:
    params = _params("stepsize")
    assert params["attack"] == ["miga", "ifgsm", "pgd"]
    assert "0.1" in params["attack.optimizer.lr"] and len(params["attack.optimizer.lr"]) == 5
    for attack in params["attack"]:
        cfg = compose_config(["experiment=stepsize", f"attack={attack}"])
        assert cfg.attack.steps == 10 and cfg.budget.epsilon == pytest.approx(1 / 255)


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("full", {"lambda_mi": 10.0, "lambda_rec": 1.0, "lambda_pert": 3.0, "lambda_reg": 1e-4}),
        ("no_mi", {"lambda_mi": 0.0, "lambda_rec": 1.0}),
        ("no_rec", {"lambda_rec": 0.0, "lambda_mi": 10.0}),
        ("no_pert", {"lambda_pert": 0.0}),
        ("no_reg", {"lambda_reg": 0.0}),
    ],
)
def test_ablation_turns_off_one_term(variant: str, expected: dict) -> None:
    cfg = compose_config(["experiment=ablation", f"ablation={variant}"])
    assert {k: cfg.attack[k] for k in expected} == pytest.approx(expected)
    assert cfg.mi_estimator.form == "ce" and cfg.attack.scheduler.gamma == 0.5


def test_ablation_form_and_scheduler_variants() -> None:
    assert _params("ablation")["ablation"][0] == "full"
    assert (
        compose_config(["experiment=ablation", "ablation=prob_mse"]).mi_estimator.form == "prob_mse"
    )
    assert (
        compose_config(["experiment=ablation", "ablation=no_steplr"]).attack.scheduler.gamma == 1.0
    )
    assert (
        compose_config(["experiment=ablation", "ablation=steplr1"]).attack.scheduler.step_size == 1
    )


def test_unknown_task_ablation() -> None:
    assert _params("ablation_unknown")["ablation"] == ["full", "mse_only", "mine_only"]
    base = ["task=demo_text", "experiment=ablation_unknown"]
    assert compose_config([*base, "ablation=mse_only"]).attack.lambda_mi == 0.0
    mine = compose_config([*base, "ablation=mine_only"]).attack
    assert (mine.lambda_rec, mine.lambda_mi) == (0.0, 0.01)


@pytest.mark.slow
def test_tiny_strength_sweep_draws_curves(tmp_path: Path) -> None:
    sweep = tmp_path / "strength"
    run_miga(
        "-m",
        "experiment=strength",
        "attack=ifgsm,random",
        "budget.epsilon=0.00392156862745098,0.01568627450980392",
        "attack.steps=1",
        "dataset=demo_small",
        "dataset.limit=2",
        "loader.batch_size=2",
        "logger=none",
        f"hydra.sweep.dir={sweep}",
        check=True,
        timeout=900,
    )
    assert report_main([str(sweep)]) == 0
    out = sweep / "report"
    assert (out / "curve_vs_epsilon.png").stat().st_size > 1000
    assert (out / "curve_psnr_vs_success.png").is_file()
    report = (out / "report.md").read_text()
    assert "## Strength curves" in report and "curve_vs_epsilon.png" in report


def test_sensor_sweeps_two_attacks_over_attack_draws_at_one_255() -> None:
    params = _params("sensor")
    assert params == {"attack": ["miga", "ifgsm"], "sensor.attack_draws": ["0", "1", "4"]}
    cfg = compose_config(["experiment=sensor"])
    assert cfg.sensor.eval_draws == 8 and cfg.sensor.noise.sigma == cfg.noise.sigma
    assert cfg.budget.epsilon == pytest.approx(1 / 255)


@pytest.mark.parametrize("attack", ["miga", "ifgsm", "pgd"])
def test_unbounded_runs_every_attack_without_a_ball(attack: str) -> None:
    from hydra.utils import instantiate

    from miga.attacks.budgets import Unbounded

    assert _params("unbounded") == {"attack": ["miga", "ifgsm", "pgd"]}
    built = instantiate(compose_config(["experiment=unbounded", f"attack={attack}"]).attack)
    assert isinstance(built.budget, Unbounded)
    assert not built.random_start  # PGD's random start has no ball to draw in
