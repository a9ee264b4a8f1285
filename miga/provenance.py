"""What a results folder was made from: config, its hash, versions, commit, weight files, and
the settings its numbers depend on beyond the config (CPU model, determinism flags)."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from miga.checkpoints import file_sha256
from miga.utils.config import config_hash

PACKAGES = (
    "miga",
    "torch",
    "torchvision",
    "lightning",
    "hydra-core",
    "omegaconf",
    "timm",
    "torchmetrics",
    "wandb",
    "numpy",
    # extras whose code or data a cell can run on (denoiser=bm3d, dataset=imagenet_samples)
    "bm3d",
    "bm4d",
    "foolbox",
)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(directory: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def weight_files(cfg: DictConfig) -> dict[str, str]:
    """sha256 of every existing file named by a `checkpoint` key anywhere in the config."""
    found: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "checkpoint" and isinstance(value, str) and Path(value).is_file():
                    found[value] = file_sha256(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(OmegaConf.to_container(cfg, resolve=True))
    return found


def group_choices() -> dict[str, str]:
    """Which option of each config group this run uses (what the report lays tables out by)."""
    if not HydraConfig.initialized():
        return {}
    choices = HydraConfig.get().runtime.choices
    return {k: str(v) for k, v in choices.items() if not k.startswith("hydra")}


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what `platform` knows): another CPU
    may run other kernels and round differently (docs/architecture.md, determinism contract)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def compute_device(cfg: DictConfig) -> str:
    """"cpu", or the GPU's name when the trainer will run on one (accelerator gpu/cuda/auto)."""
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="auto"))
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return "cpu"


def determinism(cfg: DictConfig) -> dict[str, Any]:
    """What a cell's numbers depend on besides the config: read back from torch at cell start
    (after `miga.utils.threads.apply_threads`), so the record says what ran, not what was asked."""
    return {
        "seed": cfg.get("seed"),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "cpu_model": cpu_model(),
        "device": compute_device(cfg),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
    }


def provenance(cfg: DictConfig) -> dict[str, Any]:
    return {
        "choices": group_choices(),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "config_hash": config_hash(cfg),
        "versions": package_versions(),
        "python": platform.python_version(),
        "machine": platform.platform(),
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "weights_sha256": weight_files(cfg),
        "determinism": determinism(cfg),
    }
