"""What one attack step costs per denoiser: forward + backward to the input, time and peak memory.

    python -m benchmarks.denoiser_cost                    # every full-size denoiser config
    python -m benchmarks.denoiser_cost 'models=[dncnn,swinir]' budget_s=30
    python -m benchmarks.denoiser_cost 'models=[restormer]' 'shape=[1,3,224,224]' checkpointing=both

Each model is built from its shipped config (`conf/denoiser/<name>.yaml`) with random weights
(`checkpoint=None`) and measured in a fresh subprocess, so that one model's memory high-water
mark never hides another's (Linux keeps one peak per process, and psutil exposes no peak there).
CPU: 1×3×128×128. CUDA, when available: 8×3×224×224 (ImageNet-sized attack batches).
`shape=[B,C,H,W]` sets another size. `checkpointing=on|both` measures with the denoiser's
per-block activation checkpointing (`both`: off and on, each in its own process; the `on` row
carries `ckpt_step_mem_ratio` and `ckpt_time_ratio` against the `off` row). A Hydra app: its
keys and defaults are in conf/bench_denoiser_cost.yaml.
One JSON line per (model, device, checkpointing); `time_ratio_vs_dncnn` compares against DnCNN
measured in the same run on the same device, the number to read across machines.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import warnings

import hydra
import torch
from omegaconf import DictConfig

from benchmarks.compose import ROOT, compose
from benchmarks.memory import peak_memory_mb
from benchmarks.timing import sync

SHAPES = {"cpu": (1, 3, 128, 128), "cuda": (8, 3, 224, 224)}


def build(name: str, device: str, checkpointing: bool = False) -> torch.nn.Module:
    """`denoiser=<name>` composed as a run composes it (its defaults included), with random
    weights, on `device`."""
    cfg = compose([f"denoiser={name}"], {"batch": None, "size": None}).denoiser
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "RANDOM weights" is the point here
        return hydra.utils.instantiate(
            cfg, checkpoint=None, activation_checkpointing=checkpointing
        ).to(device)


def _step(model: torch.nn.Module, x: torch.Tensor) -> None:
    """One attack-like step: gradient of an output loss with respect to the input only."""
    x = x.detach().requires_grad_(True)
    model(x).square().mean().backward()


def measure(
    name: str,
    device: str,
    reps: int,
    budget_s: float,
    shape: tuple[int, ...] | None = None,
    checkpointing: bool = False,
) -> dict:
    """Median time of up to `reps` steps after a warm-up, stopping early past `budget_s`."""
    torch.manual_seed(0)
    model = build(name, device, checkpointing)
    shape = tuple(shape or SHAPES[device])
    x = torch.rand(shape, device=device)
    # Warm-up on a small input: kernel selection and allocator growth without paying a
    # full-size step (SwinIR costs ~27 s per step at 128 px on 2 CPU cores).
    _step(model, x[:1, :, :32, :32])
    times: list[float] = []

    def timed_steps() -> None:
        start = time.perf_counter()
        while len(times) < reps and (not times or time.perf_counter() - start < budget_s):
            t0 = time.perf_counter()
            _step(model, x)
            sync(torch.device(device))
            times.append(time.perf_counter() - t0)

    memory = peak_memory_mb(timed_steps, torch.device(device))
    return {
        "model": name,
        "device": device if device == "cpu" else torch.cuda.get_device_name(),
        "shape": list(shape),
        "activation_checkpointing": checkpointing,
        "threads": torch.get_num_threads(),
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        "fwd_bwd_s": round(statistics.median(times), 4),
        "reps": len(times),
        "peak_mem_mb": round(memory["base_mb"] + memory["peak_delta_mb"], 1),
        "step_mem_mb": memory["peak_delta_mb"],  # peak minus what was resident before the steps
        "mem_kind": memory["method"],
    }


@hydra.main(version_base="1.3", config_path="pkg://miga.conf", config_name="bench_denoiser_cost")
def main(cfg: DictConfig) -> None:
    devices = list(cfg.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]))
    modes = {"off": [False], "on": [True], "both": [False, True]}[str(cfg.checkpointing)]
    shape = list(cfg.shape) if cfg.shape else None
    if cfg.one:  # child: exactly one model on one device
        row = measure(cfg.models[0], devices[0], cfg.reps, cfg.budget_s, shape, modes[0])
        print(json.dumps(row))
        return
    baseline: dict[str, float] = {}
    for device in devices:
        for name in cfg.models:
            rows = {}
            for checkpointing in modes:
                cmd = [sys.executable, "-m", "benchmarks.denoiser_cost", "one=true"]
                cmd += [f"models=[{name}]", f"devices=[{device}]", f"reps={cfg.reps}"]
                cmd += [
                    f"budget_s={cfg.budget_s}",
                    f"checkpointing={'on' if checkpointing else 'off'}",
                ]
                cmd += [f"shape=[{','.join(map(str, shape))}]"] if shape else []
                done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
                if done.returncode:
                    error = {"model": name, "device": device, "error": done.stderr[-500:]}
                    print(json.dumps(error), flush=True)
                    continue
                row = json.loads(done.stdout.strip().splitlines()[-1])
                if name == "dncnn" and not checkpointing:
                    baseline[device] = row["fwd_bwd_s"]
                if device in baseline:
                    row["time_ratio_vs_dncnn"] = round(row["fwd_bwd_s"] / baseline[device], 2)
                if checkpointing and False in rows:
                    off = rows[False]
                    row["ckpt_step_mem_ratio"] = round(row["step_mem_mb"] / off["step_mem_mb"], 4)
                    row["ckpt_time_ratio"] = round(row["fwd_bwd_s"] / off["fwd_bwd_s"], 4)
                rows[checkpointing] = row
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
