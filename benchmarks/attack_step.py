"""What an attack step costs, as ratios against baselines measured in the same process.

    python -m benchmarks.attack_step                          # the demo cell, minutes on 2 cores
    python -m benchmarks.attack_step denoiser=restormer batch=1 size=64 steps=2
    python -m benchmarks.attack_step full=true                # + the four full-size denoisers

A Hydra app (conf/bench_attack_step.yaml): the benchmark's own keys (batch, size, steps, reps,
threads, device, baselines, lightning, memory, cell, options, ckpt, compile, full, out) are
documented there, next to their defaults.

Every other argument is an override of `conf/config.yaml` (the bench config composes it),
applied exactly as `python -m miga.run` applies it (`denoiser=restormer`, `attack.lambda_mi=1`,
…). Full-size denoisers whose checkpoint file is missing get random weights: speed and memory
do not depend on the weights. Prints ONE JSON line (everything else goes to stderr).

The baseline of every time ratio, `raw`, is the victim's own forward+backward: the composite
model (defence → denoiser → task model) on the same batch, cross-entropy, gradient with respect
to the input only, models frozen. Timings alternate within each repetition, the order rotating
by one path between repetitions.
Wall-clock ratios are the headline; CPU-time ratios (`cpu_*`) are printed beside them because
they move less when other processes share the cores. `loop_overhead_ms_per_step` runs the same
loops through a victim that costs nothing (identity denoiser, pooled linear classifier), so what
is left is each loop's own work per step. benchmarks/README.md explains every key.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from benchmarks.compose import (
    CONF,
    RESULTS,
    ROOT,
    build,
    compose,
    finite_json,
    first_batch,
    machine_name,
)
from benchmarks.memory import peak_memory_mb
from benchmarks.timing import (
    Composite,
    bare_attack,
    crop,
    interleaved,
    library_attacks,
    median_s,
    ratio,
    raw_steps,
    run_attack,
    sync,
)

#: The benchmark's own keys (conf/bench_attack_step.yaml); every other override is the cell's.
BENCH_KEYS = tuple(
    k for k in OmegaConf.load(CONF / "bench_attack_step.yaml") if k not in ("defaults", "hydra")
)
STOP_OVERRIDE = "attack.stopping={_target_:miga.attacks.base.StopWhenMisclassified}"


_T0 = time.perf_counter()


def log(*parts: Any) -> None:
    print(f"[attack_step {time.perf_counter() - _T0:7.1f}s]", *parts, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- timed functions


# --------------------------------------------------------------------------- memory (children)


def child_memory(cfg, opts: dict[str, Any], device: torch.device, what: str) -> dict[str, Any]:
    """Peak memory of `steps` raw forward+backward passes or attack steps, above what was
    resident once models and inputs were built (fresh process: nothing else ran before)."""
    module = build(cfg, device)
    inputs = first_batch(cfg, module, device)
    victim = module.victim
    model = Composite(victim)
    steps = opts["steps"]
    if what == "raw":
        return peak_memory_mb(lambda: raw_steps(model, inputs.noisy, inputs.label, steps), device)
    return peak_memory_mb(lambda: run_attack(module.attack, inputs, victim, steps), device)


def spawn(argv: list[str], child: str, extra: list[str] = ()) -> dict[str, Any]:
    """Run this benchmark in a fresh process and return its JSON line."""
    return spawn_together(argv, [(child, extra)])[0]


def spawn_together(argv: list[str], jobs: list[tuple[str, list[str]]]) -> list[dict[str, Any]]:
    """Fresh processes side by side (only for what does not time itself: peak memory is per
    process), each returning its JSON line or {"error": ...}."""
    keep = [a for a in argv if not a.startswith(("child=", "out=", "full="))]
    cmds = [
        [sys.executable, "-m", "benchmarks.attack_step", *keep, *extra]
        + [f"child={child}", "out=null", "full=false"]
        for child, extra in jobs
    ]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd in cmds
    ]
    results = []
    for cmd, proc in zip(cmds, procs):
        out, err = proc.communicate()
        if proc.returncode:
            results.append({"error": err[-2000:], "cmd": " ".join(cmd[2:])})
        else:
            results.append(json.loads(out.strip().splitlines()[-1]))
    return results


# --------------------------------------------------------------------------- the parts


def paths(victim, inputs, steps: int, attack, ifgsm=None, budget=None) -> tuple[dict, str]:
    """The timed paths through one victim: raw fwd+bwd, the attack, and with `ifgsm` our
    I-FGSM plus the library's PGD and I-FGSM (BIM) at `budget` = (ε, α)."""
    model, label = Composite(victim).eval(), inputs.label
    fns: dict[str, Callable[[], Any]] = {
        "raw": lambda: raw_steps(model, inputs.noisy, label, steps),
        "attack": lambda: run_attack(attack, inputs, victim, steps),
    }
    baseline = ""
    if ifgsm is not None:
        library, baseline = library_attacks(model, *budget, steps)
        fns["ifgsm"] = lambda: run_attack(ifgsm, inputs, victim, steps)
        for name, lib in library.items():
            fns[name] = lambda lib=lib: lib(inputs.noisy, label)
    return fns, baseline


def step_timings(module, inputs, overrides, opts, device) -> tuple[dict, dict, Any]:
    """Attack step (and our I-FGSM, the library's PGD / I-FGSM) against raw fwd+bwd."""
    from hydra.utils import instantiate

    steps, info, ifgsm, budget = opts["steps"], {}, None, None
    if opts["baselines"]:
        others = [o for o in overrides if not o.startswith(("attack=", "attack.", "+attack."))]
        ifgsm = instantiate(compose(others + ["attack=ifgsm"], opts).attack).to(device)
        compose(overrides, opts)  # back to this run's config for `${hydra:...}`
        budget = (float(ifgsm.budget.epsilon), float(ifgsm.optimizer.keywords["lr"]))
        info["baseline_budget"] = {"epsilon": budget[0], "alpha": budget[1], "steps": steps}
    fns, info["baseline"] = paths(module.victim, inputs, steps, module.attack, ifgsm, budget)
    # Warm-up (allocator growth, kernel selection): every path once; for full-size rows one
    # raw step at full size and one attack step on a 32-px crop.
    log("warm-up")
    if opts["child"] == "main":
        raw_steps(Composite(module.victim), inputs.noisy, inputs.label, 1)
        run_attack(module.attack, crop(inputs, 32), module.victim, 1)
    else:
        for fn in fns.values():
            fn()
    log(f"step timings: {list(fns)} × {opts['reps']} reps × {steps} steps")
    times = interleaved(fns, opts["reps"], device)
    return times, info, (ifgsm, budget)


def loop_overhead(inputs, module, baselines, opts, device) -> dict[str, Any]:
    """Each loop's own cost per step, in ms: the same paths through a victim that costs
    ~nothing (identity denoiser, pooled linear classifier), minus its raw fwd+bwd; and the
    bookkeeping of ours alone: the attack minus the same attack's math in a bare loop
    (`timing.bare_attack`: objective, backward, optimiser, projection — nothing else)."""

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 1000)

        def forward(self, x: Tensor) -> Tensor:
            return self.fc(x.mean(dim=(2, 3)))

    from miga.attacks.state import Victim

    victim = Victim(nn.Identity(), Tiny().to(device).requires_grad_(False))
    steps = 20
    fns, _ = paths(victim, inputs, steps, module.attack, *baselines)
    bare = {"attack": module.attack, "ifgsm": baselines[0]}
    for name, attack in bare.items():
        if attack is not None:
            fns[f"bare_{name}"] = lambda a=attack: bare_attack(a, inputs, victim, steps)
    for fn in fns.values():
        fn()
    times = interleaved(fns, max(5, opts["reps"]), device)

    def per_step_ms(name: str, base: str) -> float:
        pairs = zip(times[name], times[base])
        return round(statistics.median((a[0] - b[0]) / steps * 1e3 for a, b in pairs), 3)

    overhead = {
        name: per_step_ms(name, "raw")
        for name in fns
        if name != "raw" and not name.startswith("bare_")
    }
    return {
        "loop_overhead_ms_per_step": overhead,
        "loop_bookkeeping_ms_per_step": {
            name: per_step_ms(name, f"bare_{name}") for name in bare if f"bare_{name}" in fns
        },
        "tiny_victim_raw_ms_per_step": round(median_s(times, "raw") / steps * 1e3, 3),
    }


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


def layout_and_compile(overrides, module, inputs, opts, device) -> dict[str, Any]:
    """The `speed` switches of `conf/config.yaml`, each through a module built with it on
    (exactly as `miga.run` builds it) against this run's module: `speed.channels_last=true`
    always, `speed.compile=true` when `compile=true` (slow to compile)."""
    out: dict[str, Any] = {}
    switches = [("channels_last", "speed.channels_last=true")]
    if opts["compile"]:
        switches.append(("compile", "speed.compile=true"))
    steps = opts["steps"]
    for name, override in switches:
        cfg = compose(overrides + [override], opts)
        other = build(cfg, device)
        moved = first_batch(cfg, other, device)  # in the layout its predict_step gives batches
        log(f"{override}: first call" + (" (compiling)" if name == "compile" else ""))
        first = time.perf_counter()
        run_attack(other.attack, moved, other.victim, 1)
        first_s = time.perf_counter() - first
        fns = {
            "default": lambda: run_attack(module.attack, inputs, module.victim, steps),
            name: lambda o=other, m=moved: run_attack(o.attack, m, o.victim, steps),
        }
        times = interleaved(fns, opts["reps"], device)
        out[f"{name}_time_ratio"] = ratio(times, name, "default")
        if name == "compile":
            out["compile_first_call_s"] = round(first_s, 1)
    compose(overrides, opts)  # back to this run's config for `${hydra:...}`
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


def activation_checkpointing(argv, opts) -> dict[str, Any]:
    """Restormer (random weights, 1×3×128×128, where its activations outweigh the task
    model's): activation checkpointing's memory (separate processes) and time (interleaved in
    one process) against the plain attack step."""
    small = [
        "denoiser=restormer",
        "batch=1",
        "size=128",
        "steps=1",
        "threads=" + str(opts["threads"] or torch.get_num_threads()),
    ]
    argv = [a for a in argv if a.split("=")[0] not in ("denoiser", "batch", "size", "steps")]
    off, on = spawn_together(
        argv,
        [
            ("mem_attack", small + ["denoiser.activation_checkpointing=false"]),
            ("mem_attack", small + ["denoiser.activation_checkpointing=true"]),
        ],
    )
    timing = spawn(argv, "ckpt_time", small)
    out: dict[str, Any] = {"ckpt_setting": "restormer random weights, 1x3x128x128, attack step"}
    if "error" in off or "error" in on:
        out["ckpt_error"] = (off.get("error") or on.get("error"))[-500:]
    else:
        out["ckpt_peak_mem_ratio"] = round(on["peak_delta_mb"] / off["peak_delta_mb"], 4)
        out["ckpt_peak_delta_mb"] = {"off": off["peak_delta_mb"], "on": on["peak_delta_mb"]}
    out["ckpt_time_ratio"] = timing.get("ckpt_time_ratio", timing.get("error", "")[-300:])
    return out


def child_ckpt_time(cfg, opts, device) -> dict[str, Any]:
    module = build(cfg, device)
    inputs = first_batch(cfg, module, device)
    steps = opts["steps"]

    def attack(flag: bool) -> Callable[[], Any]:
        def run() -> None:
            module.denoiser.activation_checkpointing = flag
            run_attack(module.attack, inputs, module.victim, steps)

        return run

    fns = {"off": attack(False), "on": attack(True)}
    fns["off"](), fns["on"]()
    times = interleaved(fns, max(3, opts["reps"]), device)
    return {"ckpt_time_ratio": ratio(times, "on", "off")}


def full_size(argv, opts) -> dict[str, Any]:
    """Each full-size denoiser at 1×3×128×128 with the configured downstream model, one
    subprocess each: attack step vs raw fwd+bwd and attacked images per second."""
    rows = {}
    keep = [
        a for a in argv if a.split("=")[0] not in ("denoiser", "batch", "size", "steps", "reps")
    ]
    for name in opts["full_denoisers"]:
        log(f"full-size {name} (slow)")
        extra = [
            f"denoiser={name}",
            "batch=1",
            "size=128",
            "steps=1",
            "reps=2",
            "baselines=false",
            "lightning=false",
            "memory=false",
            "cell=false",
            "options=false",
            "compile=false",
        ]
        row = spawn(keep, "main", extra)
        rows[name] = {
            k: row.get(k)
            for k in (
                "ratio_vs_raw",
                "cpu_ratio_vs_raw",
                "raw_fwd_bwd_s",
                "attack_step_s",
                "images_per_s",
                "random_weights",
                "error",
            )
            if row.get(k) is not None
        }
    return {"full_size": rows}


# --------------------------------------------------------------------------- main


def measure(argv: list[str], opts: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu")
        if opts["device"] == "auto"
        else opts["device"]
    )
    if device.type == "cuda" and not any(o.startswith("trainer") for o in overrides):
        overrides = overrides + ["trainer.accelerator=gpu"]
    cfg = compose(overrides, opts)
    child = opts["child"]
    if child in ("mem_raw", "mem_attack"):
        return child_memory(cfg, opts, device, child.removeprefix("mem_"))
    if child == "ckpt_time":
        return child_ckpt_time(cfg, opts, device)

    from hydra.core.hydra_config import HydraConfig

    choices = HydraConfig.get().runtime.choices
    cell_steps = int(cfg.attack.steps)
    module = build(cfg, device)
    inputs = first_batch(cfg, module, device)
    batch, size = inputs.noisy.shape[0], inputs.noisy.shape[-1]
    result: dict[str, Any] = {
        "machine": machine_name(device),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "denoiser": choices.get("denoiser"),
        "downstream": choices.get("downstream"),
        "attack": choices.get("attack"),
        "random_weights": cfg.denoiser.get("checkpoint") is None,
        "batch": batch,
        "size": size,
        "steps": opts["steps"],
        "reps": opts["reps"],
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    started = time.perf_counter()

    times, info, baselines = step_timings(module, inputs, overrides, opts, device)
    steps = opts["steps"]
    step_s = median_s(times, "attack") / steps
    raw_s = median_s(times, "raw") / steps
    result.update(
        ratio_vs_raw=ratio(times, "attack", "raw"),
        cpu_ratio_vs_raw=ratio(times, "attack", "raw", cpu=True),
        raw_fwd_bwd_s=round(raw_s, 4),
        attack_step_s=round(step_s, 4),
        step_images_per_s=round(batch / step_s, 4),
        images_per_s=round(batch / (step_s * cell_steps), 4),
        images_per_s_steps=cell_steps,
        **info,
    )
    if "ifgsm" in times:
        result.update(
            ratio_vs_torchattacks=ratio(times, "attack", "lib_pgd"),
            cpu_ratio_vs_torchattacks=ratio(times, "attack", "lib_pgd", cpu=True),
            cpu_ratio_ifgsm_vs_torchattacks=ratio(times, "ifgsm", "lib_ifgsm", cpu=True),
            ratio_ifgsm_vs_torchattacks=ratio(times, "ifgsm", "lib_ifgsm"),
            ratio_ifgsm_vs_torchattacks_pgd=ratio(times, "ifgsm", "lib_pgd"),
            ratio_ifgsm_vs_raw=ratio(times, "ifgsm", "raw"),
            ratio_torchattacks_vs_raw=ratio(times, "lib_pgd", "raw"),
        )
    result["seconds_per_step"] = {k: round(median_s(times, k) / steps, 4) for k in times}
    if child == "main":  # a full-size row: the step numbers are all it needs
        return result

    result.update(loop_overhead(inputs, module, baselines, opts, device))
    overhead_s = result["loop_overhead_ms_per_step"]["attack"] / 1e3
    result["loop_overhead_fraction"] = round(overhead_s / raw_s, 5)
    if opts["lightning"]:
        result.update(lightning_vs_loop(cfg, module, opts, device))
    if opts["memory"]:
        log("peak memory: raw / attack in fresh processes")
        raw_mem, attack_mem = spawn_together(argv, [("mem_raw", []), ("mem_attack", [])])
        if "error" in raw_mem or "error" in attack_mem:
            result["peak_mem_error"] = (raw_mem.get("error") or attack_mem.get("error"))[-500:]
        else:
            result["peak_mem_ratio"] = round(
                attack_mem["peak_delta_mb"] / raw_mem["peak_delta_mb"], 4
            )
            result["peak_mem_delta_mb"] = {
                "raw": raw_mem["peak_delta_mb"],
                "attack": attack_mem["peak_delta_mb"],
            }
            result["peak_mem_method"] = raw_mem["method"]
    if opts["baselines"]:
        result.update(early_stop_vs_library(cfg, module, inputs, baselines[1], opts, device))
    if opts["options"] or opts["compile"]:
        result.update(layout_and_compile(overrides, module, inputs, opts, device))
    if opts["options"] and opts["ckpt"]:
        result.update(activation_checkpointing(argv, opts))
    if device.type != "cuda":
        result["unmeasured"] = {
            "bf16_autocast": "GPU only (conf/trainer/gpu.yaml, precision=bf16-mixed)",
            "cuda_peak_memory": "no GPU in this run",
        }
    if opts["cell"]:
        result.update(cell_costs(overrides, opts, module, inputs, device))
    if opts["full"]:
        result.update(full_size(argv, opts))
    result["bench_s"] = round(time.perf_counter() - started, 1)
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench_attack_step")
def main(cfg: DictConfig) -> dict[str, Any]:
    opts = {key: cfg[key] for key in BENCH_KEYS}
    argv = list(HydraConfig.get().overrides.task)
    overrides = [a for a in argv if a.lstrip("+~").split("=")[0] not in BENCH_KEYS]
    if opts["threads"]:
        torch.set_num_threads(int(opts["threads"]))
    os.environ.setdefault("WANDB_SILENT", "true")
    result = finite_json(measure(argv, opts, overrides))
    line = json.dumps(result, default=str)
    if opts["child"] is None and opts["out"] not in (None, "none"):
        path = RESULTS / f"{result['machine']}.json" if opts["out"] == "auto" else Path(opts["out"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        log(f"written {path}")
    print(line, flush=True)
    return result


if __name__ == "__main__":
    main()
