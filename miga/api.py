"""MIGA from Python: a cell composed from overrides, run on tensors the user already has.

A notebook has its images, maybe its own denoiser and classifier; it wants δ, D(x_n+δ) and the
per-image rows without a command line or a results folder. `compose_cell` builds the same config
`python -m miga.run <overrides>` composes (Hydra's compose API on `pkg://miga.conf`, plus the
user's own config folders), and `attack` runs the cell's `AttackModule.predict_step` on the
given tensors: the attack loop and the scorers are the CLI's, so the rows are the numbers
`samples.csv` holds for the same images, noise, seed and settings.

    from miga.api import attack, compose_cell
    cfg = compose_cell(["attack.steps=5"])
    out = attack(cfg, images, labels)          # x in [0,1], (B,3,H,W); labels (B,)
    out.delta, out.attacked, out.rows          # δ, D(x_n+δ), one dict per image
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from torch import Tensor, nn

from miga.callbacks.results_writer import columns_to_rows, with_class_names
from miga.contracts import check_attack, check_denoiser, check_downstream, config_targets
from miga.metrics.summary import summarize
from miga.module import AttackModule
from miga.utils import config as _config  # noqa: F401  (registers resolvers)
from miga.utils.renamed import refuse_renamed_keys


def compose_cell(
    overrides: Sequence[str] = (),
    config_dirs: Sequence[str | Path] = (),
    config_name: str = "config",
) -> DictConfig:
    """The config `python -m miga.run <overrides>` runs, composed without a Hydra run.

    `config_dirs`: the user's own config folders (each holding `<group>/<name>.yaml`), searched
    after miga's as with `hydra.searchpath=[file://…]`. `paths.root` is the working directory,
    as in a run."""
    refuse_renamed_keys(list(overrides))
    overrides = list(overrides)
    if config_dirs:
        dirs = ",".join(f"file://{Path(d).resolve()}" for d in config_dirs)
        overrides.append(f"hydra.searchpath=[{dirs}]")
    GlobalHydra.instance().clear()
    with initialize_config_module("miga.conf", version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # so `${hydra:...}` interpolations resolve
    with open_dict(cfg):
        cfg.paths.root = os.getcwd()
        cfg.paths.output_dir = os.getcwd()  # nothing is written; `${hydra:runtime…}` is unset
    return cfg


class GivenNoise(nn.Module):
    """The noise "model" of a user who already has x_n: image i of the batch gets `noisy[i]`."""

    def __init__(self, noisy: Tensor) -> None:
        super().__init__()
        self.noisy = noisy

    def forward(
        self,
        clean: Tensor,
        index: Tensor,
        seed: int,
        stream: str = "noise",
        stored: Tensor | None = None,
    ) -> Tensor:
        """The given x_n (the noise-model signature of miga.threats.noise; a dataset's stored
        image, when one is passed, is the same thing the user gave)."""
        if self.noisy.shape != clean.shape:
            raise ValueError(
                f"noisy must have the images' shape {tuple(clean.shape)}, "
                f"got {tuple(self.noisy.shape)}"
            )
        return self.noisy.to(clean)[index.to(self.noisy.device)]


@dataclass
class AttackOutput:
    """One attack on a batch: x_n, D(x_n), δ, D(x_n+δ) (each (B,3,H,W)), the per-image rows
    (`samples.csv`'s columns, `id` = position in the batch) and their summary (`summary.json`)."""

    noisy: Tensor
    denoised: Tensor
    delta: Tensor
    attacked: Tensor
    rows: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)


def build(
    cfg: DictConfig,
    denoiser: nn.Module | None = None,
    downstream: nn.Module | None = None,
    noise: nn.Module | None = None,
) -> AttackModule:
    """The cell's `AttackModule`, with the user's own models in place of the config's where
    given (each checked against its group's contract, miga/contracts.py)."""
    from miga.run import build_module  # the CLI's own builder: the same module by construction

    module = build_module(cfg)
    targets = config_targets(cfg)
    for name, given in (("denoiser", denoiser), ("downstream", downstream), ("noise", noise)):
        if given is not None:
            given.requires_grad_(False).eval().to(memory_format=module.memory_format)
            setattr(module, name, given)
            targets[name] = f"{type(given).__module__}.{type(given).__qualname__}"
    check_denoiser(module.denoiser, targets["denoiser"])
    check_downstream(module.downstream, targets["downstream"])
    check_attack(module.attack, targets["attack"])
    return module


def attack(
    cell: DictConfig | Sequence[str],
    images: Tensor,
    labels: Tensor | None = None,
    noisy: Tensor | None = None,
    reference: Tensor | None = None,
    denoiser: nn.Module | None = None,
    downstream: nn.Module | None = None,
) -> AttackOutput:
    """Attack `images` (x, (B,3,H,W) float in [0,1]) as the cell `cell` would.

    `cell`: a config from `compose_cell`, or its overrides. `labels` (B,) for a known task,
    `reference` (B,3,H,W) for the unknown-task estimators. `noisy`: the user's own x_n; without
    it the cell's noise model draws it from (seed, i) for image i, as the CLI does for dataset
    item i. `denoiser` / `downstream`: the user's modules instead of the config's."""
    cfg = cell if isinstance(cell, DictConfig) else compose_cell(cell)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B,3,H,W) RGB, got {tuple(images.shape)}")
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)  # as a run starts
    module = build(cfg, denoiser, downstream, None if noisy is None else GivenNoise(noisy))
    batch = {"image": images, "index": torch.arange(len(images))}
    batch.update({k: v for k, v in (("label", labels), ("reference", reference)) if v is not None})
    module.grid_images, module.images_sent = len(images), 0  # every image's panels come back
    out = module.predict_step(batch, 0)
    rows = columns_to_rows(out["id"], out["columns"])
    panels = out["images"]
    return AttackOutput(
        noisy=panels["noisy"],
        denoised=panels["denoised"],
        delta=panels["delta"],
        attacked=panels["attacked"],
        rows=with_class_names(rows, getattr(module.downstream, "class_names", None)),
        summary={**summarize(rows, int(cfg.seed)), "delivery": module.delivery.describe()},
    )
