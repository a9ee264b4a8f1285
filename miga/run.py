"""`python -m miga.run [overrides]`: run one experiment cell (or a sweep with `-m`).

compose config → instantiate data, models, attack, loggers → `Trainer.predict` → results.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from miga.callbacks.results_folder import prepare_results_dir
from miga.callbacks.results_writer import ResultsWriter, read_rows
from miga.contracts import check_cell, config_targets
from miga.data.datamodule import PredictDataModule
from miga.metrics.summary import CI_SUFFIX
from miga.module import AttackModule
from miga.provenance import provenance
from miga.threats import surrogate
from miga.utils import config as _config  # noqa: F401  (registers resolvers)
from miga.utils.instantiate import instantiate_callbacks
from miga.utils.lightning_notices import lightning_notices_ignored
from miga.utils.renamed import refuse_renamed_keys
from miga.utils.threads import apply_threads
from miga.utils.wandb_env import finish_wandb, instantiate_logger, point_wandb_into, publish

log = logging.getLogger(__name__)


def build_module(cfg: DictConfig) -> AttackModule:
    """The cell's models, attack and scorers, from the config groups."""
    return AttackModule(
        denoiser=instantiate(cfg.denoiser),
        attack=instantiate(cfg.attack),
        noise=instantiate(cfg.noise),
        downstream=instantiate(cfg.get("downstream")),
        surrogate_denoiser=surrogate(cfg, "denoiser"),
        surrogate_downstream=surrogate(cfg, "downstream"),
        defense=instantiate(cfg.get("defense")),
        sensor=instantiate(cfg.get("sensor")),
        delivery=instantiate(cfg.get("delivery")),
        scorers=instantiate(cfg.metrics.scorers),
        seed=cfg.seed,
        grid_images=cfg.metrics.grid_images,
        channels_last=cfg.speed.channels_last,
        compile_models=cfg.speed.compile,
    )


def build_datamodule(cfg: DictConfig) -> PredictDataModule:
    """The cell's dataset (`dataset`) batched for the predict loop by `loader`."""
    return instantiate(cfg.loader)(dataset=instantiate(cfg.dataset))


def run_cell(cfg: DictConfig) -> dict[str, Any]:
    """Run one cell end to end and return its summary (also in `summary.json`); Lightning's
    warnings that no user can act on are ignored meanwhile (miga/utils/lightning_notices.py)."""
    with lightning_notices_ignored(num_nodes=cfg.trainer.get("num_nodes", 1)):
        return _run_cell(cfg)


def _run_cell(cfg: DictConfig) -> dict[str, Any]:
    started = time.perf_counter()
    refuse_multi_device_in_multirun(cfg)
    output_dir = Path(cfg.paths.output_dir)
    threads = apply_threads(cfg.threads)  # before any model exists: what provenance records
    L.seed_everything(cfg.seed, workers=True, verbose=False)  # seed is in provenance
    record = provenance(cfg)
    lock = prepare_results_dir(output_dir, record, resume=cfg.resume, rank=rank_zero_only.rank)

    datamodule = build_datamodule(cfg)
    callbacks = instantiate_callbacks(cfg.get("callbacks"))
    writer = results_writer(callbacks)
    done = writer.done_ids()
    if done:
        log.info("resuming: %d samples already have results in %s", len(done), output_dir)
        datamodule.skip_indices(done)

    point_wandb_into(output_dir)
    loggers = [instantiate_logger(cfg.logger)] if cfg.get("logger") else []
    for logger in loggers:
        logger.log_hyperparams(record["config"])
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        logger=loggers or False,
        callbacks=callbacks,
    )
    try:
        module = build_module(cfg)
        check_cell(module, datamodule.dataset, config_targets(cfg))
        writer.class_names = getattr(module.downstream, "class_names", None)
        if len(datamodule.dataset) > len(done):  # a finished cell resumes to its summary alone
            trainer.predict(module, datamodule=datamodule, return_predictions=False)
        trainer.strategy.barrier("results written")  # every rank's rows are on disk
        if not trainer.is_global_zero:
            return {}
        skipped = getattr(datamodule.dataset, "skipped", 0)
        summary = writer.merge(
            extra={
                "n_skipped_files": skipped,
                "seconds": time.perf_counter() - started,
                "threads": threads,
                "delivery": module.delivery.describe(),  # what the rows scored (miga.threats)
            },
            seed=int(cfg.seed),
        )
        publish(
            loggers, summary, read_rows(output_dir / "samples.csv") if summary["n_images"] else []
        )
    finally:
        finish_wandb()
        if lock is not None:
            lock.close()
    print_summary(summary, output_dir)
    return summary


def results_writer(callbacks: list[Any]) -> ResultsWriter:
    """The `callbacks` block's results writer: the cell's rows and summary are its files."""
    writers = [callback for callback in callbacks if isinstance(callback, ResultsWriter)]
    if len(writers) != 1:
        raise ValueError(
            f"callbacks must hold exactly one miga.callbacks.results_writer.ResultsWriter "
            f"(callbacks.results_writer), found {len(writers)}: the cell's rows and "
            "summary.json are its files"
        )
    return writers[0]


def refuse_multi_device_in_multirun(cfg: DictConfig) -> None:
    """DDP inside `-m` relaunches the whole sweep in every child: refuse it.

    See docs/architecture.md §6."""
    devices = cfg.trainer.get("devices", 1)
    several = (
        devices == -1
        or (isinstance(devices, int) and devices > 1)
        or (not isinstance(devices, int | str) and len(devices) > 1)
    )
    if several and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ValueError(
            f"trainer.devices={devices} inside a multirun (-m): DDP would relaunch the whole "
            "sweep in every process. Run cells on one device each and parallelise across cells "
            "with a launcher (hydra/launcher=joblib or submitit_slurm), or run this cell alone "
            "without -m."
        )


def print_summary(summary: dict[str, Any], output_dir: Path) -> None:
    """One line per key, its 95 % interval beside it (`success_rate  0.79 [0.52, 0.92]`)."""
    points = {k: v for k, v in summary.items() if not k.endswith(CI_SUFFIX)}
    width = max(map(len, points))
    lines = []
    for key, value in points.items():
        text = f"{value:.4g}" if isinstance(value, float) else f"{value}"
        if (ci := summary.get(key + CI_SUFFIX)) is not None:
            text += f" [{ci[0]:.4g}, {ci[1]:.4g}]"
        lines.append(f"{key:<{width}}  {text}")
    print("\n".join(["", f"results: {output_dir}", *lines]))


def one_line_reason(err: BaseException) -> str:
    """The error's type and first line, unwrapped from Hydra's instantiation wrapper."""
    while isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


@hydra.main(version_base="1.3", config_path="pkg://miga.conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Exit code contract: 0 when the cell is done; otherwise non-zero and one line on stderr
    (`miga: error: <reason>`; the traceback goes to `<run dir>/error.txt`). Inside `-m` a failed
    cell is logged and Hydra carries on with the other cells, failing the sweep at the end."""
    try:
        summary = run_cell(cfg)
    except Exception as err:
        reason = one_line_reason(err)
        trace = Path(HydraConfig.get().runtime.output_dir) / "error.txt"
        try:
            trace.write_text(traceback.format_exc())
        except OSError:
            pass
        print(f"miga: error: {reason} (traceback: {trace})", file=sys.stderr)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise
        sys.exit(1)
    return summary.get("success_rate")


if __name__ == "__main__":
    refuse_renamed_keys(sys.argv[1:])
    main()
