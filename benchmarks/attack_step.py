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
model (defense → denoiser → downstream) on the same batch, cross-entropy, gradient with respect
to the input only, models frozen. Timings alternate within each repetition, the order rotating
by one path between repetitions.
Wall-clock ratios are the headline; CPU-time ratios (`cpu_*`) are printed beside them because
they move less when other processes share the cores. `loop_overhead_ms_per_step` runs the same
loops through a victim that costs nothing (identity denoiser, pooled linear classifier), so what
is left is each loop's own work per step. benchmarks/README.md explains every key.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from benchmarks.cell_cost import cell_costs, early_stop_vs_library, lightning_vs_loop
from benchmarks.compose import (
    CONF,
    RESULTS,
    ROOT,
    build,
    compose,
    finite_json,
    first_batch,
    log,
    machine_name,
)
from benchmarks.memory import child_memory
from benchmarks.timing import (
    interleaved,
    loop_overhead,
    median_s,
    ratio,
    run_attack,
    step_timings,
)

#: The benchmark's own keys (conf/bench_attack_step.yaml); every other override is the cell's.
BENCH_KEYS = tuple(
    k for k in OmegaConf.load(CONF / "bench_attack_step.yaml") if k not in ("defaults", "hydra")
)


# --------------------------------------------------------------------------- timed functions


# --------------------------------------------------------------------------- memory (children)


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


@hydra.main(version_base="1.3", config_path="pkg://miga.conf", config_name="bench_attack_step")
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
