"""`python -m miga.robust objective=hat attack=obsatk`: adversarial fine-tuning of any denoiser.

Fine-tunes the configured `denoiser=` (starting from its checkpoint, read by the one safe
loader) on noisy crops of photos the demo never evaluates on (`miga.robust.data`), with δ*
from the configured `attack=` inside every training step (`miga.robust.module`) and the
`objective=` loss: `hat` (Yan et al. 2022) or `semantic` (MSE + the downstream cross-entropy
on D(x_n+δ*)). Lightning `fit` runs it; the W&B offline logger (default) and the progress bar
show the clean PSNR and the training attack's success per step.

Resume: `last.ckpt` is written into `<run dir>/checkpoints` at the end of every epoch
(`epoch_steps` steps); re-running the same command continues from it (`resume=false` starts
over). `stop_after=N` ends this invocation after N steps (a multiple of `epoch_steps`) without
changing the run folder, for splitting a long training. `last.ckpt` is read by Lightning's own
`torch.load`: it is a training folder of the user's own, a trust boundary like the run folder
itself (docs/checkpoints.md); the exported weights, the file others load, go through the one
safe loader (`denoiser.checkpoint=<output>`).

At the end it writes the network's bare state dict to `output` (the layout of
`miga/zoo/weights/demo_dncnn.pt`), `robust_summary.json` in the run folder, and prints it.
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
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf, open_dict
from torch.utils.data import DataLoader

from miga.robust.data import ROBUST_TRAINING_PHOTOS, NoisyCropSamples, StepSamples, training_photos
from miga.robust.module import AdversarialTraining
from miga.utils import config as _config  # noqa: F401  (registers resolvers)
from miga.utils.renamed import refuse_renamed_keys
from miga.utils.threads import apply_threads
from miga.utils.wandb_env import finish_wandb, instantiate_logger, log_summary, point_wandb_into
from miga.zoo.train import evaluate_on_demo

log = logging.getLogger(__name__)


def build_module(cfg: DictConfig) -> AdversarialTraining:
    """The training module from the config's groups (denoiser, attack, objective, downstream)."""
    return AdversarialTraining(
        denoiser=instantiate(cfg.denoiser),
        attack=instantiate(cfg.attack),
        objective=instantiate(cfg.objective),
        downstream=instantiate(cfg.downstream) if cfg.get("downstream") is not None else None,
        lr=cfg.lr,
        steps=cfg.steps,
        seed=cfg.seed,
    )


def training_loader(cfg: DictConfig) -> DataLoader:
    """Batches of noisy crops of the training photos, each a function of (seed, step)."""
    samples = NoisyCropSamples(training_photos(), cfg.crop, cfg.sigma, cfg.seed)
    sampler = StepSamples(cfg.batch_size, cfg.epoch_steps, cfg.steps)
    return DataLoader(samples, batch_size=cfg.batch_size, sampler=sampler)


def invocation_steps(cfg: DictConfig) -> int:
    """Where this invocation stops: `stop_after` (a multiple of `epoch_steps`, so the last
    checkpoint is an epoch end) or the run's `steps`."""
    stop = cfg.get("stop_after")
    if stop is None:
        return int(cfg.steps)
    if stop < 1 or stop % cfg.epoch_steps:
        raise ValueError(
            f"stop_after={stop} must be a positive multiple of epoch_steps={cfg.epoch_steps} "
            "(checkpoints are written at epoch ends)"
        )
    return min(int(stop), int(cfg.steps))


def logger_tags(cfg: DictConfig) -> None:
    """W&B tags that fit this app (the cell's tags name a dataset it does not have)."""
    if cfg.get("logger") is not None and "tags" in cfg.logger:
        choices = HydraConfig.get().runtime.choices
        with open_dict(cfg):
            cfg.logger.tags = ["robust"] + [
                str(choices.get(group)) for group in ("objective", "attack", "denoiser")
            ]


def train_robust(cfg: DictConfig) -> dict[str, Any]:
    started = time.perf_counter()
    apply_threads(cfg.threads)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True)
    module = build_module(cfg)
    point_wandb_into(output_dir)
    logger_tags(cfg)
    loggers = [instantiate_logger(cfg.logger)] if cfg.get("logger") else []
    settings = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(settings, resolve=True))
    checkpoints = output_dir / "checkpoints"
    last = checkpoints / "last.ckpt"
    trainer = L.Trainer(
        max_steps=invocation_steps(cfg),
        max_epochs=-1,
        accelerator=cfg.accelerator,
        devices=1,
        logger=loggers or False,
        log_every_n_steps=cfg.log_every,
        callbacks=[
            ModelCheckpoint(dirpath=checkpoints, save_last=True, save_top_k=0, every_n_epochs=1)
        ],
        num_sanity_val_steps=0,
        enable_model_summary=False,
        enable_progress_bar=cfg.progress_bar,
        default_root_dir=str(output_dir),
    )
    resumed_from = last if cfg.resume and last.is_file() else None
    try:
        trainer.fit(module, train_dataloaders=training_loader(cfg), ckpt_path=resumed_from)
        report: dict[str, Any] = {
            "global_step": trainer.global_step,
            "steps": cfg.steps,
            "resumed_from": None if resumed_from is None else str(resumed_from),
            "training_photos": [file for _, file, _ in ROBUST_TRAINING_PHOTOS],
            "trained_against": str(HydraConfig.get().runtime.choices.get("downstream")),
        }
        if trainer.global_step >= cfg.steps:
            output = Path(cfg.output)
            output.parent.mkdir(parents=True, exist_ok=True)
            torch.save(module.exported_state_dict(), output)
            report["output"] = str(output)
            module.denoiser.eval()
            report.update(evaluate_on_demo(module.denoiser, cfg.sigma))
        report["seconds"] = round(time.perf_counter() - started, 1)
        (output_dir / "robust_summary.json").write_text(json.dumps(report, indent=2) + "\n")
        log_summary(loggers, report)
    finally:
        finish_wandb()
    print(json.dumps(report), flush=True)
    return report


@hydra.main(version_base="1.3", config_path="pkg://miga.conf", config_name="robust")
def main(cfg: DictConfig) -> None:
    train_robust(cfg)


if __name__ == "__main__":
    refuse_renamed_keys(sys.argv[1:])
    main()
