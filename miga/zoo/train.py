"""`python -m miga.zoo.train [denoiser=demo] [steps=…]`: train a denoiser on shipped photos.

Trains the `net` of any denoiser config (its architecture, not the frozen wrapper) on noisy
random crops with an L1 loss and Adam under a cosine schedule (Lightning `fit`), then saves a
bare state dict, the layout the wrapper loads. The committed demo weights come from the
defaults: `python -m miga.zoo.train` (about 3 minutes on 2 CPU cores).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import hydra
import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor, nn
from torch.utils.data import DataLoader

from miga.data.demo_photos import DemoPhotos
from miga.metrics.quality import psnr
from miga.utils import config as _config  # noqa: F401  (registers resolvers)
from miga.utils.seeding import per_sample_randn
from miga.zoo.photos import NoisyCrops, training_photos

log = logging.getLogger(__name__)


class DenoiserTraining(L.LightningModule):
    """L1 regression of clean crops from noisy ones."""

    def __init__(self, net: nn.Module, lr: float, steps: int) -> None:
        super().__init__()
        self.net = net
        self.lr = lr
        self.steps = steps

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        noisy, clean = batch
        loss = F.l1_loss(self.net(noisy), clean)
        self.log("train/l1", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):  # noqa: ANN201
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, self.steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def train_denoiser(
    net: nn.Module,
    sigma: float,
    crop: int = 48,
    batch_size: int = 16,
    steps: int = 1000,
    lr: float = 1e-3,
    seed: int = 0,
) -> nn.Module:
    """Train `net` in place on noisy crops of the shipped photos; returns it in eval mode."""
    L.seed_everything(seed, workers=True)
    data = DataLoader(NoisyCrops(training_photos(), crop, sigma, seed), batch_size=batch_size)
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="auto",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=steps >= 200,
    )
    trainer.fit(DenoiserTraining(net, lr, steps), train_dataloaders=data)
    return net.eval()


@torch.no_grad()
def evaluate_on_demo(
    net: nn.Module, sigma: float, size: int = 128, seed: int = 0
) -> dict[str, float]:
    """Mean PSNR of noisy input and of the net's output on the demo photos (σ fixed)."""
    photos = DemoPhotos(size)
    clean = torch.stack([photos[i]["image"] for i in range(len(photos))])
    index = torch.arange(len(photos))
    noisy = (
        clean + per_sample_randn(clean.shape[1:], index, seed, "noise", clean) * sigma / 255
    ).clamp(0, 1)
    denoised = net.eval()(noisy).clamp(0, 1)
    return {
        "psnr_noisy": float(psnr(noisy, clean).mean()),
        "psnr_denoised": float(psnr(denoised, clean).mean()),
    }


@hydra.main(version_base="1.3", config_path="pkg://miga.conf", config_name="zoo_train")
def main(cfg: DictConfig) -> None:
    started = time.perf_counter()
    net = instantiate(cfg.denoiser.net)
    train_denoiser(net, cfg.sigma, cfg.crop, cfg.batch_size, cfg.steps, cfg.lr, cfg.seed)
    output = Path(cfg.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.contiguous() for k, v in net.state_dict().items()}, output)
    report = {
        "output": str(output),
        "seconds": round(time.perf_counter() - started, 1),
        **evaluate_on_demo(net, cfg.sigma),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
