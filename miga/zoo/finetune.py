"""`python -m miga.zoo.finetune [overrides]`: fine-tune a timm classifier on ImageNet-10.

Builds the timm model with a `num_classes`-way head from an ImageNet-1k weight file (the file's
classifier is replaced, every other tensor must load), trains it on the `train` split with
random-resized crops and flips, cross-entropy with label smoothing, AdamW and a cosine schedule
(Lightning `fit`), then writes a bare state dict (`output`) that `downstream=resnet50_in10`
loads strictly, and prints a JSON report with the `val` accuracy. Defaults: conf/zoo_finetune.yaml.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from miga.downstream.timm_models import normalisation, timm_net
from miga.utils import config as _config  # noqa: F401  (registers resolvers)

log = logging.getLogger(__name__)


class ClassifierFineTuning(L.LightningModule):
    """Cross-entropy training of `net` on normalised [0,1] RGB batches {"image", "label"}."""

    def __init__(
        self,
        net: nn.Module,
        lr: float,
        steps: int,
        weight_decay: float = 0.05,
        label_smoothing: float = 0.1,
    ) -> None:
        super().__init__()
        self.net = net
        mean, std = normalisation(net)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.lr, self.steps = lr, steps
        self.weight_decay, self.label_smoothing = weight_decay, label_smoothing

    def forward(self, image: Tensor) -> Tensor:
        return self.net((image - self.mean) / self.std)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits = self(batch["image"])
        loss = F.cross_entropy(logits, batch["label"], label_smoothing=self.label_smoothing)
        accuracy = (logits.argmax(dim=1) == batch["label"]).float().mean()
        self.log_dict({"train/loss": loss, "train/acc": accuracy}, prog_bar=True)
        return loss

    def configure_optimizers(self):  # noqa: ANN201
        optimizer = torch.optim.AdamW(
            self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, self.steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def train_augmentation(size: int, scale: Sequence[float] = (0.35, 1.0)) -> transforms.Compose:
    """PIL → PIL: random-resized crop to `size`×`size` and a random horizontal flip."""
    return transforms.Compose(
        [
            transforms.RandomResizedCrop(size, scale=tuple(scale), antialias=True),
            transforms.RandomHorizontalFlip(),
        ]
    )


def finetune(
    net: nn.Module,
    train_set: Dataset,
    steps: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    label_smoothing: float = 0.1,
    num_workers: int = 0,
    seed: int = 0,
    trainer: dict[str, Any] | None = None,
) -> nn.Module:
    """Train `net` in place for `steps` optimiser steps; returns it in eval mode."""
    L.seed_everything(seed, workers=True)
    loader = DataLoader(
        train_set,
        batch_size=batch_size,
        shuffle=True,
        drop_last=len(train_set) >= batch_size,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
    fit = L.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=steps >= 50,
        **(trainer or {}),
    )
    fit.fit(
        ClassifierFineTuning(net, lr, steps, weight_decay, label_smoothing),
        train_dataloaders=loader,
    )
    return net.eval()


@torch.no_grad()
def accuracy(net: nn.Module, dataset: Dataset, batch_size: int = 64) -> float:
    """Top-1 accuracy of `net` (eval mode, CPU or its device) on a labelled dataset."""
    model = ClassifierFineTuning(net, lr=0.0, steps=1).eval()
    device = next(net.parameters()).device
    model.to(device)
    correct = total = 0
    for batch in DataLoader(dataset, batch_size=batch_size):
        logits = model(batch["image"].to(device))
        correct += int((logits.argmax(dim=1).cpu() == batch["label"]).sum())
        total += len(batch["label"])
    return correct / max(1, total)


@hydra.main(version_base="1.3", config_path="pkg://miga.conf", config_name="zoo_finetune")
def main(cfg: DictConfig) -> None:
    started = time.perf_counter()
    net = timm_net(cfg.model_name, cfg.init_checkpoint, cfg.num_classes, adapt_head=True)
    augment = train_augmentation(cfg.train.size, cfg.crop_scale) if cfg.augment else None
    train_set = instantiate(cfg.train, transform=augment)
    finetune(
        net,
        train_set,
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        label_smoothing=cfg.label_smoothing,
        num_workers=cfg.num_workers,
        seed=cfg.seed,
        trainer=OmegaConf.to_container(cfg.trainer, resolve=True),
    )
    output = Path(cfg.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, output)
    report: dict[str, Any] = {
        "output": str(output),
        "model_name": cfg.model_name,
        "num_classes": cfg.num_classes,
        "train_images": len(train_set),
        "train_skipped": getattr(train_set, "skipped", 0),
        "steps": cfg.steps,
    }
    if cfg.get("val"):
        report["val_accuracy"] = accuracy(net, instantiate(cfg.val), cfg.batch_size)
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
