"""A benchmark's cell: the config exactly as `python -m miga.run` composes it, the module as it
builds it, the first batch as its predict step sees it; plus the machine's name and strict JSON."""

from __future__ import annotations

import math
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
RESULTS = Path(__file__).resolve().parent / "results"
#: The override that turns on the stopping rule (every attack config has `stopping`).
STOP_OVERRIDE = "attack.stopping={_target_:miga.attacks.StopWhenMisclassified}"
_T0 = time.perf_counter()


def compose(overrides: list[str], opts: dict[str, Any]):
    """The run config as `python -m miga.run <overrides>` composes it, plus `opts`' batch and
    size; model files that are not on disk become random weights (speed and memory do not
    depend on the weights)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from miga.utils import config as _config  # noqa: F401  (registers resolvers)

    extra = []
    if not any(o.lstrip("+~").split("=")[0] == "logger" for o in overrides):
        extra.append("logger=none")  # no W&B service start inside timings
    if opts["batch"] is not None:
        extra.append(f"loader.batch_size={opts['batch']}")
    if opts["size"] is not None:
        extra.append(f"dataset.size={opts['size']}")
    if GlobalHydra.instance().is_initialized():  # inside a Hydra app whose config dir is conf/
        cfg = hydra_compose("config", overrides=extra + overrides, return_hydra_config=True)
    else:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = hydra_compose("config", overrides=extra + overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # `${hydra:...}` interpolations resolve
    with open_dict(cfg):
        del cfg["hydra"]  # as @hydra.main hands it over: the task's config has no `hydra` node
        cfg.paths.root = str(ROOT)
        cfg.paths.output_dir = str(ROOT / "outputs" / "bench")  # cells get a temporary one
        # a cell run through `run_cell` applies `threads`: keep the benchmark's own count
        cfg.threads = torch.get_num_threads()
        for model in ("denoiser", "downstream"):
            checkpoint = (cfg.get(model) or {}).get("checkpoint")
            if checkpoint is not None and not Path(checkpoint).is_file():
                cfg[model].checkpoint = None  # random weights: same cost
    return cfg


def build(cfg, device: torch.device):
    """The cell's AttackModule exactly as `miga.run` builds it, on `device`."""
    from miga.run import build_module

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "RANDOM weights" is expected here
        return build_module(cfg).to(device)


def first_items(cfg, size: int, device: torch.device, distinct_ids: bool = False) -> dict:
    """The dataset's first `size` items as one collated batch on `device`, cycling a short
    dataset (`distinct_ids`: ids 0…size−1, so cycled copies draw their own noise)."""
    from hydra.utils import instantiate
    from torch.utils.data import default_collate

    dataset = instantiate(cfg.dataset)
    items = [dataset[i % len(dataset)] for i in range(size)]
    if distinct_ids:
        items = [{**item, "index": position} for position, item in enumerate(items)]
    batch = default_collate(items)
    return {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}


def first_batch(cfg, module, device: torch.device):
    """AttackInputs of the first `loader.batch_size` items (cycling if the dataset is short),
    made by the module's own `attack_inputs` as in `predict_step`."""
    return module.attack_inputs(first_items(cfg, int(cfg.loader.batch_size), device))


def slug(text: str) -> str:
    """A device name as a file-name part: 'NVIDIA H200' → 'nvidia-h200'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def machine_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda-{slug(torch.cuda.get_device_name())}"
    return f"cpu-{os.cpu_count()}core"


def finite_json(value: Any) -> Any:
    """NaN/inf → null, so the output is strict JSON."""
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def log(*parts: Any) -> None:
    print(f"[attack_step {time.perf_counter() - _T0:7.1f}s]", *parts, file=sys.stderr, flush=True)
