"""`python -m miga.robust`: the inner attack is the configured one, resume continues where a run
stopped, the exported weights load through `denoiser=`, the objectives compute their formulas,
and the training photos are not evaluation photos."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from miga.attacks.state import AttackInputs, Victim
from miga.checkpoints import read_checkpoint
from miga.robust.__main__ import build_module, train_robust, training_loader
from miga.robust.data import ROBUST_TRAINING_PHOTOS, evaluation_sources, training_photos
from miga.robust.objectives import HAT, SemanticConsistency
from tests.conftest import compose_config

#: A tiny run: 32-px crops, batches of 2, one- or two-step inner attacks, a 16-wide DnCNN.
TINY = [
    "crop=32",
    "batch_size=2",
    "denoiser.checkpoint=null",
    "denoiser.net.nc=8",
    "denoiser.net.nb=3",
    "logger=csv",
    "progress_bar=false",
    "lr=1e-3",
]


def robust_config(tmp_path: Path, overrides: list[str]) -> DictConfig:
    cfg = compose_config(TINY + overrides, name="robust")
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
        cfg.output = str(tmp_path / "denoiser.pt")
    return cfg


class _Batches(L.Callback):
    def __init__(self) -> None:
        self.batches: list[dict] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        self.batches.append({k: v.clone() for k, v in batch.items()})


@pytest.mark.filterwarnings("ignore:.*RANDOM weights")
@pytest.mark.parametrize(
    "attack", [["attack=pgd", "attack.steps=2", "~downstream"], ["attack=miga", "attack.steps=2"]]
)
def test_the_configured_attack_makes_the_delta_the_training_step_uses(
    tmp_path: Path, attack: list[str]
) -> None:
    extra = ["downstream.input_size=32"] if "~downstream" not in attack else []
    cfg = robust_config(tmp_path, attack + extra + ["steps=1", "epoch_steps=1"])
    module = build_module(cfg)
    start = copy.deepcopy(module.denoiser)  # the weights the step's attack goes through

    seen, inputs, grads_at_attack = [], [], []
    module.denoiser.register_forward_pre_hook(
        lambda _, args: inputs.append((args[0].detach().clone(), torch.is_grad_enabled()))
    )

    def on_delta(delta: torch.Tensor) -> None:
        seen.append(delta)
        grads_at_attack.append([p.grad for p in module.net.parameters()])

    module.on_delta = on_delta
    batches = _Batches()
    trainer = L.Trainer(
        max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[batches],
    )
    trainer.fit(module, train_dataloaders=training_loader(cfg))

    (delta,) = seen
    batch = batches.batches[0]
    # δ* is detached: no gradient flows from the training loss into the attack ...
    assert not delta.requires_grad and delta.grad_fn is None
    # ... and the attack put no gradient into the weights, which train again afterwards.
    assert all(g is None for g in grads_at_attack[0])
    assert all(p.requires_grad for p in module.net.parameters())
    # The last denoiser call of the step, with gradients on, is D(x_n + δ*).
    last_input, grad_enabled = inputs[-1]
    assert grad_enabled
    torch.testing.assert_close(last_input, batch["noisy"] + delta, rtol=0, atol=1e-7)

    # The same attack config run alone on the same batch, through the same starting weights.
    downstream = module.downstream
    labels = None if downstream is None else downstream(batch["image"]).argmax(1)
    with torch.no_grad():
        denoised = start(batch["noisy"])
    alone = instantiate(cfg.attack)
    with torch.enable_grad():
        result = alone(
            AttackInputs(batch["image"], batch["noisy"], denoised, batch["index"], labels,
                         seed=cfg.seed),
            Victim(start, downstream),
        )
    torch.testing.assert_close(delta, result.delta, rtol=0, atol=1e-6)
    assert delta.abs().max() > 0  # a real perturbation, not the no-attack δ = 0
    assert delta.abs().max() <= cfg.budget.epsilon + 1e-6


@pytest.mark.filterwarnings("ignore:.*RANDOM weights")
def test_a_resumed_run_continues_where_it_stopped(tmp_path: Path) -> None:
    common = ["attack=pgd", "attack.steps=1", "~downstream", "steps=4", "epoch_steps=2"]
    straight = train_robust(robust_config(tmp_path / "straight", common))
    assert straight["global_step"] == 4 and straight["resumed_from"] is None

    split = tmp_path / "split"
    first = train_robust(robust_config(split, common + ["stop_after=2"]))
    assert first["global_step"] == 2 and "output" not in first
    assert (split / "checkpoints" / "last.ckpt").is_file()
    second = train_robust(robust_config(split, common))
    assert second["resumed_from"] == str(split / "checkpoints" / "last.ckpt")
    assert second["global_step"] == 4

    # Same seeds, same batches (a function of the step), optimiser and schedule state restored:
    # the weights agree with the uninterrupted run's up to float rounding (1e-6 absolute).
    a, b = read_checkpoint(straight["output"]), read_checkpoint(second["output"])
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    # ... and training moved them (equal frozen weights would pass the check trivially).
    L.seed_everything(0)
    initial = build_module(robust_config(tmp_path / "initial", common)).net.state_dict()
    assert any(not torch.allclose(initial[k], v, atol=1e-5) for k, v in b.items())

@pytest.mark.filterwarnings("ignore:.*RANDOM weights")
def test_exported_weights_load_through_the_denoiser_config(tmp_path: Path) -> None:
    report = train_robust(
        robust_config(tmp_path, ["attack=pgd", "attack.steps=1", "~downstream", "steps=1",
                                 "epoch_steps=1"])
    )
    cfg = compose_config(
        ["denoiser=demo_hat", f"denoiser.checkpoint={report['output']}", "denoiser.net.nc=8",
         "denoiser.net.nb=3"]
    )
    denoiser = instantiate(cfg.denoiser)
    saved = read_checkpoint(report["output"])
    assert saved.keys() == denoiser.net.state_dict().keys()
    for key, value in denoiser.net.state_dict().items():
        assert torch.equal(value, saved[key])


def test_hat_is_the_convex_mix_of_the_two_mses() -> None:
    clean = torch.zeros(2, 3, 4, 4)
    total, parts = HAT(alpha=3.0)(clean + 0.1, clean + 0.2, clean)
    # (0.01 + 3 · 0.04) / (1 + 3) = 0.0325
    assert math.isclose(float(total), 0.0325, rel_tol=1e-6)
    assert math.isclose(float(parts["mse_adv"]), 0.04, rel_tol=1e-6)


def test_semantic_consistency_adds_the_cross_entropy_on_the_attacked_output() -> None:
    clean = torch.zeros(1, 3, 2, 2)
    logits = torch.tensor([[0.0, math.log(3.0)]])  # softmax (1/4, 3/4): CE for class 0 = ln 4
    total, parts = SemanticConsistency(lambda_adv=2.0, lambda_sem=0.5)(
        clean + 0.1, clean + 0.2, clean, logits, torch.tensor([0])
    )
    assert math.isclose(float(parts["ce_adv"]), math.log(4.0), rel_tol=1e-6)
    assert math.isclose(float(total), 0.01 + 2 * 0.04 + 0.5 * math.log(4.0), rel_tol=1e-6)
    with pytest.raises(ValueError, match="downstream"):
        SemanticConsistency()(clean, clean, clean)


def test_training_photos_are_not_evaluation_photos() -> None:
    evaluated = evaluation_sources()
    assert ("skimage", "data/chelsea.png") in evaluated
    assert not {(p, f) for p, f, _ in ROBUST_TRAINING_PHOTOS} & evaluated
    with pytest.raises(ValueError, match="chelsea"):
        training_photos([("skimage", "data/chelsea.png", "CC0")])
