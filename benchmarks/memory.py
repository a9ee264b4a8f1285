"""Peak memory of a piece of work: CUDA's allocator statistics on a GPU, the process's resident
high-water mark on CPU (reset first where Linux allows it); `child_memory` is what one fresh
process of `benchmarks.attack_step` measures for the raw step or the attack step."""

from __future__ import annotations

import gc
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks.compose import build, first_batch
from benchmarks.timing import Composite, raw_steps, run_attack


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def maxrss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def reset_peak_rss() -> bool:
    """Reset the process high-water RSS (Linux ≥ 4.0: `echo 5 > /proc/self/clear_refs`)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_memory_mb(work: Callable[[], Any], device: torch.device) -> dict[str, Any]:
    """Peak memory of `work()` above what was allocated (CUDA) or resident (CPU) before it.

    On CPU the high-water RSS is reset first (`/proc/self/clear_refs`); where that fails the
    number is a lower bound and `method` says so."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
        method = "cuda max_memory_allocated"
    else:
        reset = reset_peak_rss()
        base = rss_mb()
        method = "ru_maxrss after clear_refs" if reset else "ru_maxrss (no reset)"
        before = maxrss_mb()
    wall = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = maxrss_mb()
        if not reset and before > base:
            method += f" (setup peak {before - base:.0f} MB above base: a lower bound)"
    return {
        "peak_delta_mb": round(peak - base, 1),
        "base_mb": round(base, 1),
        "method": method,
        "seconds": round(time.perf_counter() - wall, 3),
    }


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
