"""Delivery (miga.threats.delivery): what the victim really receives is what a file holds.

PNG delivery is checked against PIL writing and reading back a real PNG, JPEG delivery against
PIL's own JPEG round trip; the delivered δ against the budget on random inputs at the box edges.
"""

from __future__ import annotations

import io
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from miga.attacks.budgets import L2Ball, LinfBall
from miga.attacks.miga import MIGA
from miga.attacks.state import AttackInputs, Victim
from miga.mi.cross_entropy import CrossEntropyMI
from miga.threats import JPEGDelivery, NoDelivery, PNGDelivery
from miga.threats.delivery import to_uint8
from tests.conftest import MIGA_KNOBS, attack_knobs, compose_config


def _png_readback(values: np.ndarray) -> np.ndarray:
    """Write an (H,W,3) uint8 array as a PNG file with PIL and read the file back."""
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "PNG")
    return np.array(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def _jpeg_readback(values: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "JPEG", quality=quality)
    return np.array(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def _edge_noisy(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """A noisy image with many values at and beyond the box edges (noise.clip=false-like)."""
    g = torch.Generator().manual_seed(seed)
    noisy = torch.rand(shape, generator=g) * 1.2 - 0.1
    edge = torch.rand(shape, generator=g)
    noisy = torch.where(edge < 0.2, torch.rand(shape, generator=g) * 3 / 255, noisy)
    return torch.where(edge > 0.8, 1 - torch.rand(shape, generator=g) * 3 / 255, noisy)


def _delta_in(budget: LinfBall, noisy: torch.Tensor, seed: int) -> torch.Tensor:
    """A δ in the budget and the image box, many values exactly at ±ε."""
    g = torch.Generator().manual_seed(seed)
    raw = (torch.rand(noisy.shape, generator=g) * 2 - 1) * budget.epsilon * 1.5
    return budget.project(raw, noisy)


@pytest.mark.parametrize("levels", [1, 2, 4])
def test_png_delivery_is_what_a_png_written_and_read_back_with_pil_holds(levels: int) -> None:
    budget, delivery = LinfBall(levels / 255), PNGDelivery()
    noisy = delivery.source(_edge_noisy((3, 3, 16, 16), seed=levels))
    delta = _delta_in(budget, noisy, seed=10 + levels)
    sent, _ = delivery.deliver(noisy, delta, budget)
    received = delivery(sent)  # what the victim decodes
    for i in range(len(noisy)):
        # independent of miga: numpy's float32 x_n+δ, rounded half-to-even, into a PIL PNG
        values = (noisy[i] + delta[i]).permute(1, 2, 0).numpy().astype(np.float32)
        expected = _png_readback(
            np.clip(np.rint(values * np.float32(255)), 0, 255).astype(np.uint8)
        )
        assert np.array_equal(to_uint8(sent[i]).permute(1, 2, 0).numpy(), expected)
        assert np.array_equal(to_uint8(received[i]).permute(1, 2, 0).numpy(), expected)
    # the values are exactly the file's levels, not merely close to them
    assert torch.equal(received * 255, (received * 255).round())


@pytest.mark.parametrize("levels", [1, 2, 4])
def test_delivered_delta_never_exceeds_epsilon_near_0_and_1(levels: int) -> None:
    budget, delivery = LinfBall(levels / 255), PNGDelivery()
    for seed in range(5):
        noisy = delivery.source(_edge_noisy((4, 3, 24, 24), seed=100 * levels + seed))
        delta = _delta_in(budget, noisy, seed=seed)
        assert (delta.abs() == budget.epsilon).any()  # the ball's faces are exercised
        sent, delivered = delivery.deliver(noisy, delta, budget)
        steps = delivered * 255
        assert torch.allclose(steps, steps.round(), atol=1e-4)  # whole grey levels
        assert int(steps.round().abs().max()) <= levels
        assert float(delivered.abs().max()) <= budget.epsilon + 1e-7
        assert sent.min() >= 0 and sent.max() <= 1
        torch.testing.assert_close(sent - noisy, delivered, rtol=0, atol=0)


def test_an_epsilon_off_the_8_bit_grid_is_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match=r"budget\.epsilon.*cannot be carried by an 8-bit file"):
        PNGDelivery().check_budget(LinfBall(0.5 / 255))
    with pytest.raises(ValueError, match=r"budget\.epsilon"):
        JPEGDelivery(quality=90).check_budget(LinfBall(0.25 / 255))
    PNGDelivery().check_budget(LinfBall(0.00392156862745098))  # 1/255 as the configs write it
    PNGDelivery().check_budget(L2Ball(3.0))  # an L2 radius has no grid: rounding handles it
    NoDelivery().check_budget(LinfBall(0.5 / 255))  # a float image carries any ε


def test_the_cell_refuses_half_a_grey_level_under_png() -> None:
    from miga.run import build_module

    cfg = compose_config(["delivery=png", "budget.epsilon=0.00196078431372549"])
    with pytest.raises(ValueError, match=r"budget\.epsilon=0\.00196078 \(0\.5/255\)"):
        build_module(cfg)


def test_l2_budget_rounds_towards_x_n_where_nearest_rounding_leaves_the_ball() -> None:
    """0.6/255 on every value: nearest rounding delivers 1/255 everywhere, ‖δ‖₂ 5/3 of the
    radius; rounding towards x_n delivers 0 (inside). A δ whose rounding fits keeps nearest."""
    delivery = PNGDelivery()
    noisy = torch.full((2, 3, 8, 8), 128 / 255)
    delta = torch.full_like(noisy, 0.6 / 255)
    delta[1] = 0.0
    delta[1, 0, 0, 0] = 0.6 / 255  # one value: rounds to 1/255, which the ball below holds
    budget = L2Ball(0.6 / 255 * (3 * 8 * 8) ** 0.5)
    _, delivered = delivery.deliver(noisy, delta, budget)
    assert float(delivered[0].abs().max()) == 0.0
    assert float(delivered[1].norm()) == pytest.approx(1 / 255, rel=1e-5)
    assert bool((delivered.flatten(1).norm(dim=1) <= budget.epsilon).all())


def test_jpeg_delivery_is_pils_jpeg_round_trip_at_its_quality() -> None:
    g = torch.Generator().manual_seed(3)
    image = PNGDelivery().source(torch.rand(2, 3, 32, 32, generator=g))
    received = {q: JPEGDelivery(quality=q)(image) for q in (30, 95)}
    for q, out in received.items():
        for i in range(2):
            expected = _jpeg_readback(to_uint8(image[i]).permute(1, 2, 0).numpy(), q)
            assert np.array_equal(to_uint8(out[i]).permute(1, 2, 0).numpy(), expected)
    assert not torch.equal(received[30], received[95])  # the quality reaches the encoder
    assert JPEGDelivery(quality=30).describe() == "jpeg_q30"


def test_straight_through_rounding_lets_the_attack_move_delta_and_flip_labels(
    demo_models, demo_batch
) -> None:
    """Rounding has zero gradient almost everywhere: without the straight-through backward the
    attack could not move δ. Through it, MIGA flips labels at 2/255 on the delivered images."""
    image = torch.rand(1, 3, 4, 4, requires_grad=True)
    out = PNGDelivery().attack_forward(image)
    out.sum().backward()
    assert torch.equal(out.detach(), PNGDelivery()(image.detach()))
    assert torch.equal(image.grad, torch.ones_like(image))

    denoiser, classifier = demo_models
    clean, labels, index = (t[:6] for t in demo_batch)
    delivery, budget = PNGDelivery(), LinfBall(2 / 255)
    noisy = delivery.source(
        clean + torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)) * 25 / 255
    )
    victim = Victim(denoiser, classifier, delivery=delivery)
    with torch.no_grad():
        denoised = victim.evaluate(noisy)
    inputs = AttackInputs(clean, noisy, denoised, index, label=labels)
    knobs = attack_knobs("miga", *MIGA_KNOBS)
    attack = MIGA(
        CrossEntropyMI(),
        steps=6,
        optimizer=partial(torch.optim.Adam, lr=0.1),
        budget=budget,
        **knobs,
    )
    with torch.enable_grad():
        result = attack(inputs, victim)
    sent, delivered = delivery.deliver(noisy, result.delta, budget)
    assert int((delivered * 255).round().abs().sum()) > 0  # the delivered δ moved
    with torch.no_grad():
        before = classifier(denoised).argmax(1) == labels
        after = classifier(victim.evaluate(sent)).argmax(1) == labels
    assert int(before.sum()) >= 4
    assert int(after.sum()) <= int(before.sum()) - 3


def test_a_png_cell_scores_the_delivered_image_and_says_so() -> None:
    """Through the Python API (the CLI's module): x_n and δ on the grid, δ within ε, D applied
    to exactly what a PNG of x_n+δ holds, and the summary names the delivery."""
    from miga.api import attack
    from miga.data.demo_photos import DemoPhotos

    photos = DemoPhotos(size=64, limit=3)
    x = torch.stack([photos[i]["image"] for i in range(3)])
    y = torch.tensor([photos[i]["label"] for i in range(3)])
    cfg = compose_config(
        [
            "dataset=demo_small",
            "delivery=png",
            "budget.epsilon=0.00392156862745098",
            "attack.steps=2",
        ]
    )
    out = attack(cfg, x, y)
    for t in (out.noisy, out.delta):
        assert torch.allclose(t * 255, (t * 255).round(), atol=1e-4)
    assert float(out.delta.abs().max()) <= 1 / 255 + 1e-7
    assert out.summary["delivery"] == "png"
    from miga.run import build_module

    denoiser = build_module(cfg).denoiser
    files = (
        torch.stack(
            [
                torch.from_numpy(_png_readback(to_uint8(s).permute(1, 2, 0).numpy())).permute(
                    2, 0, 1
                )
                for s in out.noisy + out.delta
            ]
        ).float()
        / 255
    )
    with torch.no_grad():
        torch.testing.assert_close(out.attacked, denoiser(files), rtol=0, atol=1e-5)
