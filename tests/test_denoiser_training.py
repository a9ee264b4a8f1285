"""Each architecture is a working denoiser, not just the right shapes: at a small width, a
short schedule (120 steps) of the project's own training script (`miga.zoo.train`) beats the
noisy input by at least 0.5 dB (NAFNet, the slowest starter, gained 1.1 dB in one run)."""

from __future__ import annotations

import pytest
import torch

from miga.denoisers.dncnn import DnCNN
from miga.denoisers.nafnet import NAFNet
from miga.denoisers.restormer import Restormer
from miga.denoisers.swinir import SwinIR
from miga.zoo.train import evaluate_on_demo, train_denoiser
from tests.helpers import run_miga

SMALL = {
    "restormer": lambda: Restormer(
        dim=8,
        num_blocks=[1, 1, 1, 1],
        num_refinement_blocks=1,
        heads=[1, 1, 1, 1],
        LayerNorm_type="BiasFree",
    ),
    "nafnet": lambda: NAFNet(
        img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]
    ),
    "swinir": lambda: SwinIR(
        img_size=32,
        window_size=8,
        depths=[1, 1],
        embed_dim=12,
        num_heads=[2, 2],
        mlp_ratio=2,
        upscale=1,
        img_range=1.0,
        upsampler="",
        resi_connection="1conv",
    ),
    "dncnn": lambda: DnCNN(nc=16, nb=5),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_short_training_beats_the_noisy_input(name: str) -> None:
    torch.manual_seed(0)
    net = train_denoiser(SMALL[name](), sigma=25, crop=32, batch_size=4, steps=120, lr=2e-3)
    scores = evaluate_on_demo(net, sigma=25, size=64)
    assert scores["psnr_denoised"] >= scores["psnr_noisy"] + 0.5, scores


SMALL_OVERRIDES = {
    "restormer": [
        "denoiser.net.dim=8",
        "denoiser.net.num_blocks=[1,1,1,1]",
        "denoiser.net.num_refinement_blocks=1",
        "denoiser.net.heads=[1,1,1,1]",
    ],
    "nafnet": ["denoiser.net.width=8", "denoiser.net.middle_blk_num=1"],
    "swinir": [
        "denoiser.net.embed_dim=12",
        "denoiser.net.depths=[1,1]",
        "denoiser.net.num_heads=[2,2]",
    ],
    "dncnn": [],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMALL_OVERRIDES))
def test_each_denoiser_runs_a_demo_cell_with_random_weights(name: str, tmp_path) -> None:
    out = run_miga(
        f"denoiser={name}",
        "denoiser.checkpoint=null",
        *SMALL_OVERRIDES[name],
        "dataset.limit=2",
        "dataset.size=64",
        "attack.steps=1",
        "logger=none",
        f"hydra.run.dir={tmp_path}",
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "RANDOM weights" in out.stderr
    assert (tmp_path / "summary.json").is_file()
