"""What whole attacks and whole cells cost: Lightning's predict loop against a plain loop, a cell
through `miga.run.run_cell` against the naive floor (steps × batches × raw fwd+bwd), with and
without early stopping, and early stopping against torchattacks' PGD over a whole attack."""

from __future__ import annotations

import contextlib
import copy
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from benchmarks.compose import STOP_OVERRIDE, compose, log
from benchmarks.timing import (
    Composite,
    interleaved,
    library_attacks,
    median_s,
    ratio,
    raw_steps,
    sync,
)


def lightning_vs_loop(cfg, module, opts, device) -> dict[str, Any]:
    """Trainer.predict (as miga.run builds it, logger off, no callbacks, no progress bar)
    against a plain loop calling the same predict_step over the same batches."""
    from hydra.utils import instantiate

    from miga.run import build_datamodule

    datamodule = build_datamodule(cfg)
    loader = datamodule.predict_dataloader()
    batches = len(loader)
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[], enable_progress_bar=False)
    module.attack.steps = opts["steps"]

    def with_lightning() -> None:
        module.images_sent = 0
        trainer.predict(module, dataloaders=loader, return_predictions=False)

    def plain_loop() -> None:
        module.images_sent = 0
        module.eval()
        with torch.no_grad():
            for i, batch in enumerate(loader):
                batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
                module.predict_step(batch, i)

    log(f"lightning vs loop: {batches} batches × {opts['steps']} steps")
    with contextlib.redirect_stdout(sys.stderr):
        with_lightning()  # warm-up (trainer set-up paths)
        times = interleaved(
            {"lightning": with_lightning, "loop": plain_loop}, max(2, opts["reps"] // 2), device
        )
    return {
        "ratio_lightning_vs_loop": ratio(times, "lightning", "loop"),
        "lightning_setting": "Trainer(**cfg.trainer, logger=False, callbacks=[], "
        "enable_progress_bar=False).predict(module, return_predictions=False)",
        "lightning_batches": batches,
        "lightning_s_per_batch": round(median_s(times, "lightning") / batches, 4),
        "loop_s_per_batch": round(median_s(times, "loop") / batches, 4),
    }


def cell_costs(cfg_overrides, opts, module, inputs, device) -> dict[str, Any]:
    """Whole cells through `miga.run.run_cell` (writer, grids, progress bar: the real path,
    logger off) against the naive floor steps × batches × raw fwd+bwd, without and with the
    early-stopping rule. Raw fwd+bwd is timed before, between and after the cells."""
    from miga.run import run_cell

    model = Composite(module.victim)
    raw_times: list[float] = []

    def time_raw() -> None:
        for _ in range(2):
            sync(device)
            t = time.perf_counter()
            raw_steps(model, inputs.noisy, inputs.label, 1)
            sync(device)
            raw_times.append(time.perf_counter() - t)

    from omegaconf import open_dict

    results: dict[str, Any] = {}
    scratch = tempfile.TemporaryDirectory(prefix="miga-bench-")
    for tag, extra in (("", []), ("_early_stop", [STOP_OVERRIDE])):
        cfg = compose(cfg_overrides + extra, opts)
        with open_dict(cfg):
            cfg.resume = False
            cfg.paths.output_dir = str(Path(scratch.name) / (tag.strip("_") or "naive"))
        time_raw()
        log(f"cell{tag or ' (naive)'}: {' '.join(extra) or 'as configured'}")
        wall = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            summary = run_cell(cfg)
        wall = time.perf_counter() - wall
        results[tag] = (wall, summary, int(cfg.attack.steps), int(cfg.loader.batch_size))
    time_raw()
    scratch.cleanup()
    raw = statistics.median(raw_times)
    out: dict[str, Any] = {"cell_raw_fwd_bwd_s": round(raw, 4)}
    for tag, (wall, summary, steps, batch) in results.items():
        n = int(summary["n_images"])
        batches = math.ceil(n / batch)
        floor = steps * batches * raw
        out[f"cell_cost_vs_naive{tag}"] = round(wall / floor, 4)
        out[f"cell_s{tag}"] = round(wall, 2)
        out[f"cell_success_rate{tag}"] = summary.get("success_rate")
        out[f"cell_steps_mean{tag}"] = summary.get("steps_mean")
        if not tag:
            out.update(
                cell_images=n,
                cell_batches=batches,
                cell_attack_steps=steps,
                cell_naive_floor_s=round(floor, 2),
                cell_images_per_s=round(n / wall, 4),
            )
    out["cell_early_stop_override"] = STOP_OVERRIDE
    if "_early_stop" in results and "" in results:
        a, b = out.get("cell_success_rate"), out.get("cell_success_rate_early_stop")
        known = all(isinstance(v, float | int) and math.isfinite(v) for v in (a, b))
        out["early_stop_success_rate_kept"] = b >= a if known else None
        out["early_stop_time_ratio"] = round(results["_early_stop"][0] / results[""][0], 4)
    return out


def early_stop_vs_library(cfg, module, inputs, budget, opts, device) -> dict[str, Any]:
    """Whole attacks of the config's step count on the first batch: MIGA with the stopping
    rule of `STOP_OVERRIDE` against torchattacks' PGD (which always runs every step) at the
    same budget, step size and step count: the saving early stopping buys over the library."""
    from miga.attacks.base import StopWhenMisclassified

    steps = int(cfg.attack.steps)
    stopping_attack = copy.deepcopy(module.attack)  # a shallow copy would share `_modules`
    stopping_attack.stopping = StopWhenMisclassified()
    library, _ = library_attacks(Composite(module.victim), *budget, steps)
    outcome: dict[str, Any] = {}

    def attack_early_stop() -> None:
        stopping_attack.steps = steps
        with torch.enable_grad():
            outcome["result"] = stopping_attack(inputs, module.victim)

    fns = {
        "attack_early_stop": attack_early_stop,
        "lib_pgd": lambda: library["lib_pgd"](inputs.noisy, inputs.label),
    }
    log(f"early stopping against the library's PGD: whole attacks of {steps} steps")
    times = interleaved(fns, max(2, opts["reps"] // 4), device)
    result = outcome["result"]
    return {
        "ratio_vs_torchattacks_early_stop": ratio(times, "attack_early_stop", "lib_pgd"),
        "early_stop_attack_steps": steps,
        "early_stop_steps_mean": round(float(result.steps.float().mean()), 3),
        "early_stop_stopped_fraction": round(float(result.stopped.float().mean()), 3),
    }
