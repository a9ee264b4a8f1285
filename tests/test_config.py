"""Every config group choice composes, and the top-level command line behaves."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from miga.metrics.scorers import scorer_list
from tests.conftest import CONF, compose_config
from tests.helpers import run_miga

GROUPS = [
    "denoiser",
    "dataset",
    "attack",
    "mi_estimator",
    "downstream",
    "noise",
    "defense",
    "metrics",
    "logger",
    "trainer",
    "sensor",
    "loader",
    "budget",
    "task",
]


def _choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "group,choice", [(g, c) for g in GROUPS for c in _choices(g)], ids=lambda v: str(v)
)
def test_every_group_choice_composes_and_resolves(group: str, choice: str) -> None:
    cfg = compose_config([f"{group}={choice}"])
    assert OmegaConf.select(cfg, "hydra.runtime.choices")[group] == choice
    if cfg.get(group) is None:  # e.g. logger=none
        return
    node = cfg[group]
    mandatory = [k for k in node if OmegaConf.is_missing(node, k)]  # `???`: the user sets these
    if mandatory:
        cfg = compose_config(
            [f"{group}={choice}", *[f"{group}.{k}=set_by_user" for k in mandatory]]
        )
    resolved = OmegaConf.to_container(cfg[group], resolve=True)
    if group != "metrics":
        assert "_target_" in resolved, f"conf/{group}/{choice}.yaml has no _target_"


def test_the_demo_default_instantiates_its_cheap_parts() -> None:
    cfg = compose_config()
    assert cfg.trainer.inference_mode is False
    noise = instantiate(cfg.noise)
    assert noise.sigma == 25
    attack = instantiate(cfg.attack)
    assert attack.budget.epsilon == pytest.approx(4 / 255)
    assert set(attack.terms) == {"rec", "pert", "reg", "mi"}
    assert [type(s).__name__ for s in scorer_list(instantiate(cfg.metrics.scorers))] == [
        "ImageQuality",
        "PerturbationSize",
        "Classification",
        "HeldoutClassification",  # no judge configured by default: it adds no columns
        "AttackBookkeeping",
        "DeltaPSNR",
        "TargetedSuccess",
        "LPIPS",
    ]


def test_unknown_choice_lists_the_valid_ones() -> None:
    out = run_miga("denoiser=nope")
    assert out.returncode != 0
    assert "Could not find 'denoiser/nope'" in out.stderr
    assert "demo" in out.stderr and "dncnn" in out.stderr  # the available options are listed


def test_cfg_job_prints_the_composed_config() -> None:
    out = run_miga("--cfg", "job", "attack.steps=3", check=True)
    assert "steps: 3" in out.stdout and "_target_: miga.attacks.MIGA" in out.stdout


def test_missing_checkpoint_names_the_file(tmp_path) -> None:
    out = run_miga(
        "denoiser=dncnn",
        f"paths.checkpoints={tmp_path}",
        f"hydra.run.dir={tmp_path / 'run'}",
        "logger=none",
    )
    assert out.returncode != 0
    assert f"checkpoint not found: {tmp_path}/dncnn_color_blind.pth" in out.stderr


@pytest.mark.parametrize(
    "override,message",
    [
        ("dataset.dataset.root=/data/x", "`dataset.dataset.root` was renamed: use `dataset.root`"),
        ("dataset.batch_size=4", "`dataset.batch_size` was renamed: use `loader.batch_size`"),
        ("+dataset.num_workers=2", "use `loader.num_workers`"),
        ("dataset.task=ocr", "`dataset.task` was removed: the task is chosen by `task=`"),
        # train_critic's evaluation pairs; the judges keep `heldout_` (metrics.heldout_*)
        ("heldout=demo_text_test", "`heldout` was renamed: use `validation`"),
    ],
)
def test_an_old_key_names_the_new_one(override: str, message: str) -> None:
    from miga.utils.renamed import renamed_key_error

    assert message in renamed_key_error(["attack.steps=2", override])
    current = ["dataset.root=/data/x", "loader.batch_size=4", "validation=demo_text_test"]
    assert renamed_key_error([*current, "metrics.heldout_downstream=null"]) is None


def test_the_entry_point_refuses_an_old_key_before_composing() -> None:
    out = run_miga("dataset.dataset.limit=3")
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "miga: error: `dataset.dataset.limit` was renamed: use `dataset.limit` "
        "(in `dataset.dataset.limit=3`)"
    )


def test_scorers_are_name_keyed_and_compose() -> None:
    """One metrics choice extends another, and any scorer is overridable or removable by name."""
    ocr, critic = (compose_config([f"metrics={m}"]).metrics.scorers for m in ("ocr", "ocr_critic"))
    assert list(critic) == [*ocr, "attack_critic", "heldout_critic"]  # ocr + two critics
    tesseract = compose_config(["downstream=ocr"]).downstream  # the one home of its settings
    assert dict(ocr.ocr.ocr) == dict(tesseract)
    assert critic.ocr.ocr.psm == 7 and ocr.ocr.ocr.psm == 6  # the one line ocr_critic changes
    cfg = compose_config(["metrics.scorers.lpips=null"])
    names = [type(s).__name__ for s in scorer_list(instantiate(cfg.metrics.scorers))]
    assert "LPIPS" not in names and names[0] == "ImageQuality"
    cfg = compose_config(["metrics.scorers.classification.stealth_psnr_db=35"])
    assert instantiate(cfg.metrics.scorers.classification).stealth_psnr_db == 35


def test_a_targeted_attack_is_the_attacks_choice() -> None:
    cfg = compose_config(["attack.target_class=3"])
    attack = instantiate(cfg.attack)
    assert attack.terms["mi"].estimator.target_class == 3
    targeted = instantiate(cfg.metrics.scorers.targeted)
    assert targeted.target_class == 3  # the scorer follows the attack
    assert instantiate(compose_config(["attack=ifgsm", "attack.target_class=3"]).attack)
    with pytest.raises(Exception, match=r"attack.target_class=3 needs a known task"):
        instantiate(compose_config(["task=demo_text", "attack.target_class=3"]).attack)
