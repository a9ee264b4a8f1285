"""Defenses before the denoiser: real transforms at evaluation, BPDA/differentiable for attacks."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from miga.attacks import IFGSM, NoAttack
from miga.attacks.budgets import LinfBall
from miga.attacks.optim import SignGradientDescent
from miga.attacks.state import AttackInputs, Victim
from miga.defenses import JPEG, BitDepth, GaussianBlur, MedianFilter, NoDefense, ResizePad
from miga.metrics.quality import psnr
from miga.metrics.scorers import ImageQuality
from miga.module import AttackModule
from miga.threats.noise import GaussianNoise
from tests.conftest import compose_config

EPS = 4 / 255


def test_real_jpeg_differs_from_the_identity_and_bpda_passes_the_gradient(demo_batch) -> None:
    image = demo_batch[0][:2]
    jpeg = JPEG(quality=50)
    compressed = jpeg(image)
    assert compressed.shape == image.shape
    assert (compressed - image).abs().max() > 10 / 255  # the codec changed the image
    assert 25 < float(psnr(compressed, image).mean()) < 45  # ... as JPEG does, not more
    torch.testing.assert_close(compressed * 255, (compressed * 255).round())  # 8-bit decoded
    x = image.clone().requires_grad_(True)
    out = jpeg.attack_forward(x)
    torch.testing.assert_close(out.detach(), compressed)  # forward value: the real codec
    weights = torch.randn_like(image)
    (grad,) = torch.autograd.grad((out * weights).sum(), x)
    torch.testing.assert_close(grad, weights)  # backward: the identity's gradient


def test_non_adaptive_attacks_see_the_identity() -> None:
    x = torch.rand(2, 3, 8, 8)
    for defense in (JPEG(adaptive=False), MedianFilter(adaptive=False), BitDepth(adaptive=False)):
        assert defense.attack_forward(x) is x
        assert not torch.equal(defense(x), x)


def test_median_filter_by_hand() -> None:
    x = torch.tensor([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]]).view(1, 1, 3, 3) / 10
    # 3×3 windows of the reflect-padded image, e.g. the top-left one is
    # [[5,4,5],[2,1,2],[5,4,5]] → sorted 1 2 2 4 4 5 5 5 5 → median 4
    expected = torch.tensor([[4.0, 4, 5], [5, 5, 5], [5, 6, 6]]).view(1, 1, 3, 3) / 10
    torch.testing.assert_close(MedianFilter(3)(x), expected)
    spike = torch.zeros(1, 3, 5, 5)
    spike[..., 2, 2] = 1.0
    assert MedianFilter(3)(spike).abs().max() == 0  # an isolated spike is removed
    with pytest.raises(ValueError, match="odd"):
        MedianFilter(4)


def test_bit_depth_reduction_exact_values() -> None:
    x = torch.tensor([0.0, 0.1, 0.2, 0.5, 0.7, 1.0]).view(1, 1, 1, 6)
    # 2 bits: 3 levels above 0; round(3x) / 3 = [0, 0, 1, 2, 2, 3] / 3 (round half to even)
    expected = torch.tensor([0.0, 0.0, 1, 2, 2, 3]).view(1, 1, 1, 6) / 3
    torch.testing.assert_close(BitDepth(bits=2)(x), expected)
    torch.testing.assert_close(BitDepth(bits=8)(x), (x * 255).round() / 255)
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(BitDepth(bits=2).attack_forward(x).sum(), x)
    torch.testing.assert_close(grad, torch.ones_like(x))  # BPDA


def test_gaussian_blur_keeps_constants_and_is_differentiated_as_is() -> None:
    blur = GaussianBlur(kernel_size=5, sigma=1.0)
    flat = torch.full((1, 3, 9, 9), 0.3)
    torch.testing.assert_close(blur(flat), flat)
    x = torch.rand(1, 3, 9, 9, requires_grad=True)
    (grad,) = torch.autograd.grad(blur.attack_forward(x)[0, 0, 4, 4], x)
    assert grad[0, 0, 4, 4] < 1 and grad[0, 0, 3:6, 3:6].sum() > 0.5  # the blur's own gradient
    assert grad[0, 1].abs().max() == 0  # per channel


def test_resize_pad_is_seeded_per_sample_and_keeps_the_size() -> None:
    x = torch.rand(3, 3, 32, 32)
    defense = ResizePad(min_scale=0.8)
    out = defense(x, index=torch.tensor([5, 6, 7]), seed=1)
    assert out.shape == x.shape
    alone = defense(x[1:2], index=torch.tensor([6]), seed=1)
    torch.testing.assert_close(out[1:2], alone)  # independent of batch composition
    assert not torch.equal(out, defense(x, index=torch.tensor([5, 6, 7]), seed=2))
    assert not torch.equal(out[0], defense(x[:1], index=torch.tensor([9]), seed=1)[0])
    centre = defense.surrogate(x)
    torch.testing.assert_close(centre, defense.surrogate(x))  # attack path: deterministic
    assert centre.shape == x.shape


def test_defense_configs_instantiate_with_the_adaptive_flag() -> None:
    for name, kind in (
        ("none", NoDefense),
        ("jpeg", JPEG),
        ("median", MedianFilter),
        ("gaussian_blur", GaussianBlur),
        ("bit_depth", BitDepth),
        ("resize_pad", ResizePad),
    ):
        cfg = compose_config([f"defense={name}", "defense.adaptive=false"])
        defense = instantiate(cfg.defense)
        assert isinstance(defense, kind) and defense.adaptive is False


def test_victim_attacks_through_the_surrogate_and_evaluates_through_the_real_defense() -> None:
    seen = []

    class Record(nn.Module):
        def forward(self, image: torch.Tensor) -> torch.Tensor:
            seen.append(image)
            return image

    x = torch.rand(1, 3, 8, 8)
    victim = Victim(Record(), defense=BitDepth(bits=2, adaptive=False))
    victim.denoise(x)
    victim.evaluate(x)
    assert torch.equal(seen[0], x)  # non-adaptive attack: no defense
    torch.testing.assert_close(seen[1], BitDepth(bits=2)(x))  # evaluation: the real one


def test_module_evaluates_through_the_real_defense(demo_models, demo_batch) -> None:
    denoiser, classifier = demo_models
    clean, labels, index = (t[:2] for t in demo_batch)
    module = AttackModule(
        denoiser=denoiser,
        attack=NoAttack(),
        noise=GaussianNoise(25.0),
        downstream=classifier,
        defense=JPEG(quality=30),
        scorers=[ImageQuality()],
    )
    out = module.predict_step({"image": clean, "index": index, "label": labels}, 0)
    noisy = GaussianNoise(25.0)(clean, index, 0)
    with torch.no_grad():
        expected = psnr(denoiser(JPEG(quality=30)(noisy)), clean)
        undefended = psnr(denoiser(noisy), clean)
    torch.testing.assert_close(out["columns"]["psnr_denoised"], expected)
    assert not torch.allclose(expected, undefended)


DEFENSES = {
    "bit_depth": lambda adaptive: BitDepth(bits=4, adaptive=adaptive),
    "gaussian_blur": lambda adaptive: GaussianBlur(5, 1.0, adaptive=adaptive),
    "jpeg": lambda adaptive: JPEG(quality=30, adaptive=adaptive),
    "median": lambda adaptive: MedianFilter(3, adaptive=adaptive),
}


def test_adaptive_attack_is_at_least_as_strong_as_the_non_adaptive_one(demo_models) -> None:
    """Same images, same budget, evaluated through the real defense: the attack that
    optimises through the defense (BPDA / differentiable form) leaves no higher accuracy and no
    lower true-label cross-entropy than the one that ignores it, on every defense, and is
    strictly stronger on at least one (measured: on all four at ε = 2/255, 3 steps)."""
    from miga.data.demo_photos import DemoPhotos

    denoiser, classifier = demo_models
    photos = DemoPhotos(size=64)
    items = [photos[i] for i in range(6)]
    clean = torch.stack([item["image"] for item in items])
    labels, index = torch.tensor([item["label"] for item in items]), torch.arange(6)
    noisy = GaussianNoise(25.0)(clean, index, 0)
    eps = 2 / 255
    attack = IFGSM(
        steps=3, optimizer=partial(SignGradientDescent, lr=eps / 2), budget=LinfBall(eps)
    )
    stronger = []
    for name, make in DEFENSES.items():
        evaluation = Victim(denoiser, classifier, make(True))
        with torch.no_grad():
            denoised = evaluation.evaluate(noisy, index)
        inputs = AttackInputs(clean, noisy, denoised, index, label=labels)
        accuracy, loss = {}, {}
        for adaptive in (True, False):
            with torch.enable_grad():
                delta = attack(inputs, Victim(denoiser, classifier, make(adaptive))).delta
            assert delta.abs().max() <= eps + 1e-6
            with torch.no_grad():
                logits = classifier(evaluation.evaluate(noisy + delta, index))
            accuracy[adaptive] = float((logits.argmax(1) == labels).float().mean())
            loss[adaptive] = float(torch.nn.functional.cross_entropy(logits, labels))
        assert accuracy[True] <= accuracy[False], name
        assert loss[True] >= loss[False], name
        stronger.append(accuracy[True] < accuracy[False])
    assert any(stronger)
