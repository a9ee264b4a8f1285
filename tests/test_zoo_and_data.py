"""The demo's own material: photos, per-sample noise, and the denoiser training script."""

from __future__ import annotations

import torch
from hydra.utils import instantiate

from miga.data.demo_photos import DemoPhotos
from miga.denoisers.dncnn import DnCNN
from miga.threats.noise import GaussianNoise
from miga.zoo.train import evaluate_on_demo, train_denoiser
from tests.conftest import compose_config


def test_demo_photos_are_real_labelled_images() -> None:
    photos = DemoPhotos(size=64)
    assert len(photos) == 14
    item = photos[3]
    assert item["image"].shape == (3, 64, 64) and item["index"] == 3
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["image"].std() > 0.05  # a photo, not a flat fill
    assert {photos[i]["label"] for i in range(len(photos))} == {285, 967, 665, 744}


def test_noise_depends_on_seed_and_index_not_on_batch() -> None:
    noise = GaussianNoise(sigma=25)
    images = torch.full((3, 3, 16, 16), 0.5)
    together = noise(images, torch.tensor([4, 5, 6]), seed=1)
    alone = noise(images[1:2], torch.tensor([5]), seed=1)
    torch.testing.assert_close(together[1:2], alone, rtol=0, atol=0)
    assert not torch.equal(together, noise(images, torch.tensor([4, 5, 6]), seed=2))
    assert abs(float((together - images).std()) - 25 / 255) < 0.01


def test_short_training_beats_the_noisy_input() -> None:
    """A tiny DnCNN, 150 steps of the zoo script, gains at least 3 dB over the noisy input."""
    torch.manual_seed(0)
    net = train_denoiser(DnCNN(nc=16, nb=5), sigma=25, crop=32, batch_size=8, steps=150, lr=2e-3)
    scores = evaluate_on_demo(net, sigma=25, size=64)
    assert scores["psnr_denoised"] >= scores["psnr_noisy"] + 3.0, scores


def test_the_committed_demo_denoiser_clears_the_stated_bar(demo_models) -> None:
    denoiser, _ = demo_models
    scores = evaluate_on_demo(denoiser, sigma=25, size=128)
    assert scores["psnr_noisy"] < 21.0
    assert scores["psnr_denoised"] > 27.5, scores


def test_the_committed_demo_restormer_loads_strictly_and_denoises() -> None:
    """The demo zoo's transformer (conf/denoiser/demo_restormer.yaml): the official Restormer
    architecture at dim 8, its committed weights through the strict loader, ≥ 6 dB over x_n."""
    restormer = instantiate(compose_config(["denoiser=demo_restormer"]).denoiser)
    scores = evaluate_on_demo(restormer, sigma=25, size=128)
    assert scores["psnr_denoised"] > scores["psnr_noisy"] + 6.0, scores
