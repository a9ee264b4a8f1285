"""Keep W&B hermetic: its files under the run directory, its run finished per cell.

`WandbLogger(offline=True)` would set WANDB_MODE for the whole process, and tables with images
are staged under the user's home unless WANDB_DATA_DIR is set (docs/architecture.md §6): so
every W&B directory points into the run directory, and the mode is passed as `mode=`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from omegaconf import DictConfig

WANDB_DIR_VARIABLES = ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR")


class WandbLogger(LightningWandbLogger):
    """Lightning's W&B logger without the `anonymous` argument it always hands to `wandb.init`.

    Lightning passes `anonymous=None` when anonymous logging is not asked for; W&B (0.31, pinned)
    ignores the setting and warns "The anonymous setting has no effect" whenever it is passed at
    all, even as None. Passing nothing is what "not asked for" means, and silences it at source.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._wandb_init.get("anonymous") is None:
            del self._wandb_init["anonymous"]


def point_wandb_into(run_dir: str | Path) -> Path:
    """Set W&B's directory variables to `<run_dir>/wandb*` and create them."""
    base = Path(run_dir)
    for variable in WANDB_DIR_VARIABLES:
        suffix = variable.removeprefix("WANDB_").removesuffix("_DIR").lower()
        folder = base if variable == "WANDB_DIR" else base / f"wandb_{suffix}"
        folder.mkdir(parents=True, exist_ok=True)
        os.environ[variable] = str(folder)
    os.environ.setdefault("WANDB_SILENT", "true")
    return base / "wandb"


def instantiate_logger(cfg: DictConfig) -> Any:
    """The configured logger; an online W&B logger that cannot start falls back to offline.

    A sweep on a cluster node without network (or without `wandb login`) must not lose its
    cell: one warning, then the same logger with `mode=offline`, syncable later.
    """
    logger = instantiate(cfg)
    if cfg.get("mode") != "online":
        return logger
    try:
        _ = logger.experiment  # forces wandb.init
    except Exception as err:  # wandb raises several types (UsageError, CommError, timeouts)
        warnings.warn(f"W&B online unavailable ({err}); continuing offline", stacklevel=2)
        finish_wandb()
        logger = instantiate(cfg, mode="offline")
    return logger


def publish(loggers: Iterable[Any], summary: Mapping[str, Any], rows: Sequence[Mapping]) -> None:
    """Send the cell's summary scalars and per-image table to every logger that takes them."""
    scalars = {f"summary/{k}": v for k, v in summary.items() if isinstance(v, int | float)}
    for logger in loggers:
        logger.log_metrics(scalars)
        if hasattr(logger, "log_table") and rows:
            columns = list(rows[0])
            logger.log_table(
                key="samples", columns=columns, data=[[r[c] for c in columns] for r in rows]
            )
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "summary"):
            experiment.summary.update(dict(summary))
        logger.save()


def log_summary(loggers: Iterable[Any], summary: Mapping[str, Any]) -> None:
    """A training app's final numbers, as `summary/<key>` scalars in every logger (the JSON
    file beside them holds the rest)."""
    for logger in loggers:
        logger.log_metrics(
            {f"summary/{k}": v for k, v in summary.items() if isinstance(v, int | float)}
        )
        logger.save()


def finish_wandb() -> None:
    """End the process's W&B run, if any (joblib workers are reused between cells)."""
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish()
