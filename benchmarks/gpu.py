"""The paper's cells on one GPU, measured by one prepared check within a time budget it enforces.

    python -m benchmarks.gpu                   # make bench-gpu: full size, budget_s=360
    python -m benchmarks.gpu tiny=true         # every part at tiny sizes (CPU, under a minute)
    python -m benchmarks.gpu budget_s=120 'denoisers=[restormer]' parts=[step,memory]

For Restormer (σ=50 layout), NAFNet-64, SwinIR-M and DnCNN colour (random weights in the official
layouts), 224×224, batch 8, through ResNet-50 with a 10-class head, the parts (conf/bench_gpu.yaml):

- `step`   the MIGA step ÷ the raw forward+backward of the same models, fp32 and bf16 autocast
           (as `trainer=gpu` runs it), and the loop's host reads per step (0 without stopping);
- `drift`  bf16 against fp32 from the same inputs, everything scored in fp32: how far D(x_n+δ),
           success and PSNR move;
- `cell`   images per second of a `cell_steps`-step cell (attack + scoring, the predict step),
           with and without the stopping rule;
- `memory` peak memory of an attack step with and without `denoiser.activation_checkpointing`,
           and the largest batch that fits at `size`² for each;
- `channels_last`, `compile`  `speed.channels_last` and `speed.compile` against eager, as
           ratios (the first call, compile time, timed apart).

A part starts only if its estimate (the denoiser's measured step time × the steps it runs) fits
in what is left of `budget_s`; what does not is listed under `skipped`, and the script still
exits 0. It writes one JSON (`benchmarks/results/gpu-<device>.json`) and prints a table.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from benchmarks.compose import RESULTS, build, compose, finite_json, first_items, slug
from benchmarks.memory import peak_memory_mb
from benchmarks.timing import interleaved, median_s, paths, ratio, run_attack, sync
from miga.attacks.base import StopWhenMisclassified
from miga.attacks.state import AttackInputs
from miga.metrics.quality import psnr
from miga.module import full_precision
from miga.utils.host_reads import HostReads

log = logging.getLogger("benchmarks.gpu")


@dataclass
class Deadline:
    """The check's own time budget: `fits` says whether a piece of work estimated at `need_s`
    still fits, and records it as skipped when it does not."""

    budget_s: float
    started: float = field(default_factory=time.perf_counter)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.started)

    def fits(self, part: str, denoiser: str, need_s: float) -> bool:
        if need_s <= self.left():
            return True
        self.skipped.append(
            {
                "part": part,
                "denoiser": denoiser,
                "needs_s": round(need_s, 1),
                "left_s": round(max(self.left(), 0.0), 1),
            }
        )
        log.info("skip %s/%s: needs ~%.0f s, %.0f s left", part, denoiser, need_s, self.left())
        return False


@dataclass
class Workload:
    """What the parts time for one denoiser: its cell's config, the built module and its first
    batch (labels = the classifier's own predictions on D(x_n), so every sample starts correct
    under random weights). Not a `miga.report.Cell` (a finished cell folder on disk): this one
    lives in memory, is never run to the end and writes nothing, hence its own name."""

    name: str
    cfg: DictConfig
    module: Any
    batch: dict[str, Any]
    inputs: AttackInputs
    step_s: float | None = None  # fp32 attack step, once measured

    def inputs_at(self, size: int) -> AttackInputs:
        """The batch repeated (or cut) to `size` images, for the largest-batch search."""
        repeat = math.ceil(size / len(self.inputs))
        pick = lambda t: None if t is None else torch.cat([t] * repeat)[:size]  # noqa: E731
        fields = ("clean", "noisy", "denoised", "index", "label", "reference")
        return replace(self.inputs, **{k: pick(getattr(self.inputs, k)) for k in fields})


@contextmanager
def precision(name: str, device: torch.device) -> Iterator[None]:
    """fp32, or bf16 autocast as Lightning's `bf16-mixed` applies it to the predict step."""
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=name == "bf16"):
        yield


def settings(cfg: DictConfig) -> DictConfig:
    """The run's settings: tiny=true replaces sizes and counts by `tiny_settings`, except
    those given on the command line (`tiny=true cell_steps=10` runs 10 steps)."""
    if not cfg.tiny:
        return cfg
    given = set()
    if HydraConfig.initialized():
        given = {o.partition("=")[0].lstrip("+~") for o in HydraConfig.get().overrides.task}
    return OmegaConf.merge(cfg, {k: v for k, v in cfg.tiny_settings.items() if k not in given})


def cell_config(name: str, cfg: DictConfig, extra: tuple[str, ...] = ()) -> DictConfig:
    """The run config of denoiser `name`'s cell (tiny: its architecture cut down), + `extra`."""
    overrides = [f"denoiser={name}", f"downstream={cfg.downstream}", *cfg.cell]
    if cfg.tiny:
        overrides += [*cfg.tiny_cell, *cfg.tiny_denoisers.get(name, [])]
    return compose([*overrides, *extra], {"batch": cfg.batch, "size": cfg.size})


def make_workload(name: str, cfg: DictConfig, device: torch.device) -> Workload:
    run_cfg = cell_config(name, cfg)
    module = build(run_cfg, device)
    batch = first_items(run_cfg, int(cfg.batch), device, distinct_ids=True)
    inputs = module.attack_inputs(batch)
    with full_precision(device):
        label = module.victim.downstream(inputs.denoised).argmax(dim=1)
    batch["label"] = label
    return Workload(name, run_cfg, module, batch, replace(inputs, label=label))


# --------------------------------------------------------------------------- the parts


def part_step(work: Workload, cfg: DictConfig, device: torch.device) -> dict[str, Any]:
    """MIGA step ÷ raw fwd+bwd, per precision; the loop's host reads per step."""
    module, steps = work.module, int(cfg.steps)
    fns, _ = paths(module.victim, work.inputs, steps, module.attack)  # raw and attack
    out: dict[str, Any] = {}
    for name in ("fp32", "bf16"):
        with precision(name, device):
            for fn in fns.values():
                fn()  # warm-up: allocator, kernel selection
            times = interleaved(fns, int(cfg.reps), device)
        out[name] = {
            "ratio_vs_raw": ratio(times, "attack", "raw"),
            "raw_fwd_bwd_s": round(median_s(times, "raw") / steps, 5),
            "attack_step_s": round(median_s(times, "attack") / steps, 5),
        }
    work.step_s = out["fp32"]["attack_step_s"]
    out["host_reads_per_step"] = host_reads_per_step(work)
    return out


def host_reads_per_step(work: Workload) -> float:
    """(reads in 3 steps − reads in 1 step) / 2 by the miga package's own code: 0 when every step's
    bookkeeping stays on the device."""
    counts = []
    for steps in (1, 3):
        with HostReads() as reads:
            run_attack(work.module.attack, work.inputs, work.module.victim, steps)
        counts.append(reads.count)
    return (counts[1] - counts[0]) / 2


def attack_scored(work: Workload, steps: int, name: str, device: torch.device) -> dict[str, Any]:
    """δ of a `steps`-step MIGA under `name` precision, then D(x_n+δ) and its scores in fp32."""
    module, inputs = work.module, work.inputs
    torch.manual_seed(0)
    with precision(name, device):
        delta = run_attack(module.attack, inputs, module.victim, steps).float()
    with full_precision(device):
        attacked = module.victim.evaluate(inputs.noisy + delta).float()
        predicted = module.victim.downstream(attacked).argmax(dim=1)
    return {
        "attacked": attacked,
        "success": (predicted != inputs.label).float(),
        "psnr": psnr(attacked, inputs.clean),
    }


def part_drift(work: Workload, cfg: DictConfig, device: torch.device) -> dict[str, Any]:
    """bf16 against fp32 on the same inputs, both scored in fp32."""
    steps = int(cfg.drift_steps)
    fp32 = attack_scored(work, steps, "fp32", device)
    bf16 = attack_scored(work, steps, "bf16", device)
    moved = (bf16["attacked"] - fp32["attacked"]).abs()
    return {
        "steps": steps,
        "output_max_abs_diff": float(moved.max()),
        "output_mean_abs_diff": float(moved.mean()),
        "success_fp32": float(fp32["success"].mean()),
        "success_bf16": float(bf16["success"].mean()),
        "success_disagree": float((fp32["success"] != bf16["success"]).float().mean()),
        "psnr_fp32_db": float(fp32["psnr"].mean()),
        "psnr_bf16_db": float(bf16["psnr"].mean()),
        "psnr_max_abs_diff_db": float((fp32["psnr"] - bf16["psnr"]).abs().max()),
    }


def part_cell(work: Workload, cfg: DictConfig, device: torch.device) -> dict[str, Any]:
    """Images per second of a `cell_steps`-step predict step (attack + scoring), the default
    precision of the device (bf16 on GPU, as trainer=gpu; fp32 on CPU), with and without the
    stopping rule."""
    module, steps = work.module, int(cfg.cell_steps)
    name = "bf16" if device.type == "cuda" else "fp32"
    out: dict[str, Any] = {"steps": steps, "precision": name}
    attack = module.attack
    saved = attack.steps, attack.stopping
    try:
        for label, stopping in (("", None), ("_early_stop", StopWhenMisclassified())):
            attack.steps, attack.stopping = steps, stopping
            sync(device)
            start = time.perf_counter()
            with precision(name, device), torch.no_grad():
                columns = module.predict_step(work.batch, 0)["columns"]
            sync(device)
            seconds = time.perf_counter() - start
            out[f"images_per_s{label}"] = round(len(work.inputs) / seconds, 4)
            out[f"success{label}"] = float(columns["success"].nanmean())
            out[f"steps_mean{label}"] = float(columns["steps"].float().mean())
    finally:
        attack.steps, attack.stopping = saved
    return out


def part_memory(
    work: Workload, cfg: DictConfig, device: torch.device, deadline: Deadline
) -> dict[str, Any]:
    """Peak memory of `steps` attack steps and the largest batch, with and without activation
    checkpointing of the denoiser's blocks; and the bytes autograd keeps for backward in one
    step (`saved_mb`: exact on any device, and what checkpointing trades for recomputation)."""
    denoiser, steps, out = work.module.denoiser, int(cfg.steps), {}
    victim = work.module.victim
    for label, enabled in (("plain", False), ("checkpointing", True)):
        denoiser.activation_checkpointing = enabled
        try:
            peak = peak_memory_mb(
                lambda: run_attack(work.module.attack, work.inputs, victim, steps), device
            )
            saved = saved_for_backward_mb(
                lambda: run_attack(work.module.attack, work.inputs, victim, 1), work.module
            )
            largest = largest_batch(work, cfg, device, deadline)
        finally:
            denoiser.activation_checkpointing = False
        out[label] = {
            "peak_delta_mb": peak["peak_delta_mb"],
            "saved_mb": saved,
            "method": peak["method"],
            **largest,
        }
    plain, ckpt = out["plain"], out["checkpointing"]
    out["peak_ratio"] = _ratio(ckpt["peak_delta_mb"], plain["peak_delta_mb"])
    out["saved_ratio"] = _ratio(ckpt["saved_mb"], plain["saved_mb"])
    return out


def saved_for_backward_mb(work: Callable[[], Any], models: torch.nn.Module) -> float:
    """MB of the activations autograd saves for backward while `work()` runs (each storage
    once, the models' weights left out; a checkpointed block saves its inputs only)."""
    weights = {t.untyped_storage().data_ptr() for t in [*models.parameters(), *models.buffers()]}
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            seen[storage.data_ptr()] = max(seen.get(storage.data_ptr(), 0), storage.nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        work()
    return round(sum(seen.values()) / 2**20, 3)


def _ratio(num: float, den: float) -> float:
    return round(num / den, 4) if den > 0 else float("nan")


def largest_batch(
    work: Workload, cfg: DictConfig, device: torch.device, deadline: Deadline
) -> dict[str, Any]:
    """The largest batch at which one attack step runs: doubling from the cell's batch until
    it fails (CUDA out of memory) or reaches `max_batch`, then bisecting. On CPU nothing fails
    before the cap, so the answer is the cap (`capped`)."""
    module, cap = work.module, int(cfg.max_batch)
    step_s = (work.step_s or float(cfg.unknown_step_s)) / len(work.inputs)  # per image

    def runs(size: int) -> bool:
        try:
            run_attack(module.attack, work.inputs_at(size), module.victim, 1)
            sync(device)
            return True
        except torch.OutOfMemoryError:
            return False
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()

    ok, failed, size = 0, None, len(work.inputs)
    while size <= cap and deadline.left() > 2 * size * step_s:
        if not runs(size):
            failed = size
            break
        ok, size = size, size * 2
    while failed is not None and failed - ok > max(1, ok // 16):
        middle = (ok + failed) // 2
        if deadline.left() <= 2 * middle * step_s:
            break
        ok, failed = (middle, failed) if runs(middle) else (ok, middle)
    return {"largest_batch": ok, "capped": failed is None and ok * 2 > cap}


def against_eager(
    work: Workload, cfg: DictConfig, device: torch.device, label: str, override: str
) -> dict[str, Any]:
    """MIGA steps through a module built with one `speed` switch (as `miga.run` builds it, the
    same weights) ÷ the eager module's, interleaved; the switched module's first call (compile
    time) apart. In the device's default precision (bf16 on GPU, fp32 on CPU)."""
    steps, name = int(cfg.steps), "bf16" if device.type == "cuda" else "fp32"
    other = build(cell_config(work.name, cfg, (override,)), device)
    other.load_state_dict(work.module.state_dict(), strict=False)
    inputs = replace(other.attack_inputs(work.batch), label=work.inputs.label)
    with precision(name, device):
        start = time.perf_counter()
        run_attack(other.attack, inputs, other.victim, 1)  # compiles on the first call
        sync(device)
        first = time.perf_counter() - start
        fns = {
            "eager": lambda: run_attack(work.module.attack, work.inputs, work.module.victim, steps),
            label: lambda: run_attack(other.attack, inputs, other.victim, steps),
        }
        fns["eager"]()
        times = interleaved(fns, int(cfg.reps), device)
    return {
        f"{label}_time_ratio": ratio(times, label, "eager"),
        f"{label}_first_call_s": round(first, 3),
        "precision": name,
    }


def part_channels_last(work: Workload, cfg: DictConfig, device: torch.device) -> dict[str, Any]:
    return against_eager(work, cfg, device, "channels_last", "speed.channels_last=true")


def part_compile(work: Workload, cfg: DictConfig, device: torch.device) -> dict[str, Any]:
    return against_eager(work, cfg, device, "compile", f"speed.compile={cfg.compile}")


# --------------------------------------------------------------------------- the check

Measure = Callable[[Workload, DictConfig, torch.device, Deadline], dict[str, Any]]
Estimate = Callable[[float, DictConfig], float]

#: Each part: what it measures, and its estimated seconds from the fp32 step time `s` (the
#: whole attack steps it runs), in the order `parts` may name them.
PARTS: dict[str, tuple[Measure, Estimate]] = {
    "step": (
        lambda c, s, d, _: part_step(c, s, d),
        lambda s, c: 2 * 2 * (int(c.reps) + 1) * int(c.steps) * s + 6 * s,
    ),
    "drift": (
        lambda c, s, d, _: part_drift(c, s, d),
        lambda s, c: 2 * int(c.drift_steps) * s,
    ),
    "cell": (
        lambda c, s, d, _: part_cell(c, s, d),
        lambda s, c: 2 * int(c.cell_steps) * s,
    ),
    "memory": (
        part_memory,
        lambda s, c: 2 * (int(c.steps) * s + 4 * s * min(int(c.max_batch), 64) / int(c.batch)),
    ),
    "channels_last": (
        lambda c, s, d, _: part_channels_last(c, s, d),
        lambda s, c: 2 * (int(c.reps) + 1) * int(c.steps) * s + s,
    ),
    "compile": (
        lambda c, s, d, _: part_compile(c, s, d),
        lambda s, c: 2 * (int(c.reps) + 1) * int(c.steps) * s + float(c.compile_s),
    ),
}


def versions(device: torch.device) -> dict[str, Any]:
    """Device, driver, torch and CUDA versions."""
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(device=props.name, memory_gb=round(props.total_memory / 2**30, 1))
        info["capability"] = f"{props.major}.{props.minor}"
        info["driver"] = nvidia_smi("driver_version")
    else:
        info.update(device=f"cpu ({os.cpu_count()} cores)", driver=None)
    return info


def nvidia_smi(query: str) -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    done = subprocess.run(
        ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout else None


def run(cfg: DictConfig) -> dict[str, Any]:
    """Every part over every denoiser within the budget; the result as one dict."""
    cfg = settings(cfg)
    deadline = Deadline(float(cfg.budget_s))
    want = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(want)
    result: dict[str, Any] = {
        "versions": versions(device),
        "tiny": bool(cfg.tiny),
        "settings": {k: cfg[k] for k in ("budget_s", "batch", "size", "steps", "reps")}
        | {k: cfg[k] for k in ("cell_steps", "drift_steps", "max_batch", "compile", "downstream")},
        "parts": {part: {} for part in cfg.parts},
    }
    workloads: dict[str, Workload] = {}
    for part in cfg.parts:
        if part not in PARTS:
            raise ValueError(f"parts: unknown part '{part}', expected some of {list(PARTS)}")
        measure, estimate = PARTS[part]
        for name in cfg.denoisers:
            step_s = workloads[name].step_s if name in workloads else None
            need = estimate(step_s or float(cfg.unknown_step_s), cfg)
            if not deadline.fits(part, name, need):
                continue
            log.info("%s / %s (%.0f s left)", part, name, deadline.left())
            if name not in workloads:
                workloads[name] = make_workload(name, cfg, device)
            work, started = workloads[name], time.perf_counter()
            values = measure(work, cfg, device, deadline)
            values["seconds"] = round(time.perf_counter() - started, 2)
            result["parts"][part][name] = values
    result["skipped"] = deadline.skipped
    result["bench_s"] = round(time.perf_counter() - deadline.started, 1)
    return finite_json(result)


#: Keys the JSON keeps but the table leaves out (constant per machine or bookkeeping).
HIDDEN = ("seconds", "method", "precision", "steps")


def table(result: dict[str, Any]) -> str:
    """The result as a Markdown table per part (what benchmarks/README.md gets)."""
    lines = [
        f"device: {result['versions']['device']}, torch {result['versions']['torch']}, "
        f"CUDA {result['versions']['cuda']}, driver {result['versions'].get('driver')}"
    ]
    for part, rows in result["parts"].items():
        if not rows:
            continue
        flat = {name: dict(_flatten(values)) for name, values in rows.items()}
        keys = [k for k in next(iter(flat.values())) if k.rpartition(".")[2] not in HIDDEN]
        lines += ["", f"### {part}", "", "| denoiser | " + " | ".join(keys) + " |"]
        lines.append("|---" * (len(keys) + 1) + "|")
        for name, values in flat.items():
            lines.append(f"| {name} | " + " | ".join(_cell(values.get(k)) for k in keys) + " |")
    if result["skipped"]:
        lines += [
            "",
            "skipped: " + ", ".join(f"{s['part']}/{s['denoiser']}" for s in result["skipped"]),
        ]
    return "\n".join(lines)


def _flatten(values: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in values.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "–" if value is None else str(value)


def output_path(cfg: DictConfig, result: dict[str, Any]) -> Path | None:
    if cfg.out is None or (cfg.out == "auto" and cfg.tiny):
        return None
    if cfg.out != "auto":
        return Path(cfg.out)
    return RESULTS / f"gpu-{slug(result['versions']['device'])}.json"


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench_gpu")
def main(cfg: DictConfig) -> None:
    os.environ.setdefault("WANDB_SILENT", "true")
    result = run(cfg)
    path = output_path(cfg, result)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        log.info("written %s", path)
    print(table(result), flush=True)


if __name__ == "__main__":
    main()
