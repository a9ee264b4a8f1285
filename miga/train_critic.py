"""`python -m miga.train_critic mi_estimator=mine dataset=<paired set>`: train an MI critic.

Trains the critic of the configured neural estimator on the (image, reference) pairs of a paired
dataset (`dataset`, items with "image" and "reference") with a Lightning `fit` loop
(`miga.mi.training.CriticTraining`), logs the MI estimate curve (`mi/estimate`, and
`mi/validation` / `mi/validation_shuffled` on `validation` pairs when configured) to the configured
logger (W&B offline by default, its files in the run folder), then saves the critic's plain state
dict to `output`, which `mi_estimator.checkpoint=<file>` loads strictly and frozen for the attack.
Prints one JSON line (first/last estimates, validation values, seconds, output path).

The run folder is deterministic, like `miga.run`'s: `outputs/train_critic/<overrides>`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torch.utils.data import DataLoader, Dataset, RandomSampler

from miga.mi.training import CriticTraining, validation_estimates
from miga.utils import config as _config  # noqa: F401  (registers resolvers)
from miga.utils.renamed import refuse_renamed_keys
from miga.utils.wandb_env import finish_wandb, instantiate_logger, log_summary, point_wandb_into

log = logging.getLogger(__name__)


def training_loader(dataset: Dataset, batch_size: int, steps: int, seed: int) -> DataLoader:
    """Exactly `steps` batches of `batch_size` pairs drawn with replacement (seeded)."""
    if len(dataset) < 2:
        raise ValueError(f"critic training needs at least 2 pairs, the dataset has {len(dataset)}")
    generator = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(
        dataset, replacement=True, num_samples=steps * batch_size, generator=generator
    )
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True)


def whole(dataset: Dataset) -> dict[str, torch.Tensor]:
    """All pairs of a (small) validation set as one batch."""
    items = [dataset[i] for i in range(len(dataset))]
    return {key: torch.stack([item[key] for item in items]) for key in ("image", "reference")}


def logger_tags(cfg: DictConfig) -> None:
    """Tags of a W&B logger that fit this script (the cell's tags name a denoiser and attack)."""
    if cfg.get("logger") is not None and "tags" in cfg.logger:
        choices = HydraConfig.get().runtime.choices
        with open_dict(cfg):
            cfg.logger.tags = [
                "train_critic",
                str(choices.get("dataset")),
                str(choices.get("mi_estimator")),
            ]


def train_critic(cfg: DictConfig) -> dict[str, Any]:
    started = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True)

    estimator = instantiate(cfg.mi_estimator)
    train_set: Dataset = instantiate(cfg.dataset)
    validation_set = instantiate(cfg.validation) if cfg.get("validation") is not None else None
    module = CriticTraining(
        estimator,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        augment_sigma=cfg.augment_sigma,
        eval_repeats=cfg.eval_repeats,
    )

    point_wandb_into(output_dir)
    logger_tags(cfg)
    loggers = [instantiate_logger(cfg.logger)] if cfg.get("logger") else []
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    val_loader = (
        DataLoader([whole(validation_set)], batch_size=None) if validation_set is not None else None
    )
    trainer = L.Trainer(
        max_steps=cfg.steps,
        accelerator=cfg.accelerator,
        devices=1,
        logger=loggers or False,
        log_every_n_steps=cfg.log_every,
        val_check_interval=min(cfg.eval_every, cfg.steps) if val_loader is not None else None,
        limit_val_batches=1 if val_loader is not None else 0,
        num_sanity_val_steps=1 if val_loader is not None else 0,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=cfg.progress_bar,
        default_root_dir=str(output_dir),
    )
    curve: list[float] = []

    class _Curve(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            value = trainer.callback_metrics.get("mi/estimate")
            if value is not None:
                curve.append(float(value))

    trainer.callbacks.append(_Curve())
    try:
        trainer.fit(
            module,
            train_dataloaders=training_loader(train_set, cfg.batch_size, cfg.steps, cfg.seed),
            val_dataloaders=val_loader,
        )
        output = Path(cfg.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        torch.save(module.critic_state_dict(), output)
        report: dict[str, Any] = {
            "output": str(output),
            "steps": cfg.steps,
            "mi_first": round(curve[0], 4) if curve else None,
            "mi_last": round(curve[-1], 4) if curve else None,
            "mi_last10_mean": round(sum(curve[-10:]) / len(curve[-10:]), 4) if curve else None,
        }
        if validation_set is not None:
            estimator.eval()
            true, shuffled = validation_estimates(
                estimator.cpu(),
                **whole(validation_set),
                augment_sigma=cfg.augment_sigma,
                repeats=cfg.eval_repeats,
                seed=cfg.seed,
            )
            report.update(
                validation_pairs=len(validation_set),
                mi_validation=round(true, 4),
                mi_validation_shuffled=round(shuffled, 4),
            )
        report["seconds"] = round(time.perf_counter() - started, 1)
        (output_dir / "critic_summary.json").write_text(json.dumps(report, indent=2) + "\n")
        (output_dir / "mi_curve.json").write_text(json.dumps(curve) + "\n")
        log_summary(loggers, report)
    finally:
        finish_wandb()
    print(json.dumps(report), flush=True)
    return report


@hydra.main(version_base="1.3", config_path="pkg://miga.conf", config_name="train_critic")
def main(cfg: DictConfig) -> None:
    train_critic(cfg)


if __name__ == "__main__":
    refuse_renamed_keys(sys.argv[1:])
    main()
