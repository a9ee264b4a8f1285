"""Transfer: the attack's gradients come from the surrogate, the rows' scores from the victim.

Real models throughout (the demo DnCNN as victim, the Gaussian filter as surrogate denoiser);
forward/backward hooks record which model each pass went through.
"""

from __future__ import annotations

import torch

from miga.metrics.quality import psnr
from miga.module import AttackModule
from miga.run import build_module
from tests.conftest import compose_config

TINY = ["attack.steps=3", "metrics.lpips_checkpoint=null"]


def _module(*overrides: str) -> AttackModule:
    return build_module(compose_config([*TINY, *overrides]))


def _record(model: torch.nn.Module, log: list[str], name: str) -> None:
    model.register_forward_hook(
        lambda m, i, o: log.append(f"{name}:{'grad' if o.requires_grad else 'nograd'}")
    )
    model.register_full_backward_hook(lambda m, gi, go: log.append(f"{name}:backward"))


def _batch(n: int = 3) -> dict:
    from hydra.utils import instantiate

    dataset = instantiate(compose_config().dataset)
    items = [dataset[i] for i in range(n)]
    return {
        "image": torch.stack([it["image"] for it in items]),
        "label": torch.tensor([it["label"] for it in items]),
        "index": torch.tensor([it["index"] for it in items]),
    }


def test_the_attack_goes_through_the_surrogate_and_the_rows_through_the_victim() -> None:
    module = _module("denoiser@surrogate.denoiser=gaussian_filter")
    assert not module.white_box
    log: list[str] = []
    _record(module.denoiser, log, "victim")
    _record(module.surrogate_denoiser, log, "surrogate")
    batch = _batch()
    with torch.no_grad():  # as Lightning runs predict
        out = module.predict_step(batch, 0)
    steps = 3
    # the victim: D(x_n) and D(x_n+δ) for scoring, never with a graph, never a backward
    assert log.count("victim:nograd") == 2 and "victim:grad" not in log
    assert "victim:backward" not in log
    # the surrogate: its own D_s(x_n) once, then every step forward with a graph and backward
    assert log.count("surrogate:nograd") == 1
    assert log.count("surrogate:grad") == steps and log.count("surrogate:backward") == steps
    assert out["columns"]["white_box"].tolist() == [0.0, 0.0, 0.0]

    # scored through the victim: PSNR(D(x_n+δ), x) recomputed here with the victim's denoiser
    images = out["images"]
    with torch.no_grad():
        attacked = module.denoiser(images["perturbed"])
    torch.testing.assert_close(images["attacked"], attacked)
    torch.testing.assert_close(out["columns"]["psnr_attacked"], psnr(attacked, batch["image"]))


def test_white_box_is_the_default_and_the_surrogate_changes_delta() -> None:
    batch = _batch()
    torch.manual_seed(0)
    white = _module()
    assert white.white_box and white.attacker.denoiser is white.denoiser
    with torch.no_grad():
        a = white.predict_step(batch, 0)
        b = _module("denoiser@surrogate.denoiser=gaussian_filter").predict_step(batch, 0)
    assert a["columns"]["white_box"].tolist() == [1.0, 1.0, 1.0]
    # the same victim scores D(x_n) in both (same noise), the attacks differ
    torch.testing.assert_close(a["columns"]["psnr_denoised"], b["columns"]["psnr_denoised"])
    assert not torch.equal(a["images"]["delta"], b["images"]["delta"])


def test_a_surrogate_classifier_replaces_only_the_attacks_classifier() -> None:
    module = _module("downstream@surrogate.downstream=demo_lite1")
    assert module.attacker.downstream is module.surrogate_downstream
    assert module.attacker.denoiser is module.denoiser  # the denoiser stays the victim's
    log: list[str] = []
    _record(module.downstream, log, "victim")
    _record(module.surrogate_downstream, log, "surrogate")
    with torch.no_grad():
        module.predict_step(_batch(2), 0)
    assert "victim:backward" not in log and "victim:grad" not in log
    assert log.count("surrogate:backward") == 3


def test_a_surrogate_equal_to_the_victim_is_white_box() -> None:
    module = _module("denoiser@surrogate.denoiser=demo")
    assert module.white_box and module.surrogate_denoiser is None
