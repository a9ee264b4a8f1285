"""Timing: the victim as one model, its raw forward+backward (the baseline of every time ratio),
the attack, a bare loop of the same attack's math and the library's attacks as timed paths, the
interleaved timer whose paired ratios survive a machine that other jobs share, and the step and
loop-overhead measurements of `benchmarks.attack_step` built from them."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks.compose import compose, log


class Composite(nn.Module):
    """The victim as one model: defense (attack form) → denoiser → downstream model."""

    def __init__(self, victim) -> None:
        super().__init__()
        self.victim = victim
        self.downstream = victim.downstream
        self.denoiser = victim.denoiser

    def forward(self, x: Tensor) -> Tensor:
        return self.downstream(self.victim.denoise(x))


def raw_steps(model: nn.Module, x0: Tensor, label: Tensor, steps: int) -> Tensor:
    """The baseline: `steps` forward+backward passes to the input, nothing else."""
    grad = x0
    for _ in range(steps):
        x = x0.detach().requires_grad_(True)
        loss = F.cross_entropy(model(x), label, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def crop(inputs, size: int):
    """The top-left size×size crop of every image of a batch (cheap warm-ups)."""
    cut = lambda t: t if t is None else t[..., :size, :size]  # noqa: E731
    return replace(
        inputs,
        clean=cut(inputs.clean),
        noisy=cut(inputs.noisy),
        denoised=cut(inputs.denoised),
        reference=cut(inputs.reference),
    )


def run_attack(attack, inputs, victim, steps: int) -> Tensor:
    attack.steps = steps
    with torch.enable_grad():
        return attack(inputs, victim).delta


def bare_attack(attack, inputs, victim, steps: int) -> Tensor:
    """The attack's own math with none of the loop's bookkeeping: its objective, backward,
    optimiser step and projection, as a hand-written loop for this one attack would run them
    (no per-sample masks, NaN rollback, frozen samples or loss history). The attack's time
    minus this one is what the loop itself costs."""
    delta = attack.initial_delta(inputs).detach().requires_grad_(True)
    optimizer = attack.optimizer([delta])
    scheduler = attack.scheduler(optimizer) if attack.scheduler is not None else None
    project = attack.budget.projector(inputs.noisy)
    with torch.enable_grad():
        for _ in range(steps):
            state = attack._step_state(inputs, victim, delta)
            optimizer.zero_grad(set_to_none=True)
            attack.objective(state)[0].sum().backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            with torch.no_grad():
                delta.copy_(project(delta))
    return delta.detach()


def inline_pgd(model, images, labels, eps, alpha, steps, random_start=True) -> Tensor:
    """A torchattacks-style L∞ PGD (used only when torchattacks is not installed): the
    loop of that library, a fresh leaf per step, batch-mean CE, sign step, clip."""
    images, labels = images.clone().detach(), labels.clone().detach()
    adv = images.clone().detach()
    if random_start:
        adv = (adv + torch.empty_like(adv).uniform_(-eps, eps)).clamp(0, 1).detach()
    for _ in range(steps):
        adv.requires_grad = True
        cost = F.cross_entropy(model(adv), labels)
        (grad,) = torch.autograd.grad(cost, adv, retain_graph=False, create_graph=False)
        adv = adv.detach() + alpha * grad.sign()
        adv = (images + (adv - images).clamp(-eps, eps)).clamp(0, 1).detach()
    return adv


def library_attacks(model, eps: float, alpha: float, steps: int) -> tuple[dict, str]:
    """torchattacks' PGD and BIM (its I-FGSM) at our budget and step size, or inline twins."""
    try:
        import torchattacks
    except ImportError:
        pgd = lambda x, y: inline_pgd(model, x, y, eps, alpha, steps, True)  # noqa: E731
        ifgsm = lambda x, y: inline_pgd(model, x, y, eps, alpha, steps, False)  # noqa: E731
        return {"lib_pgd": pgd, "lib_ifgsm": ifgsm}, "inline"
    pgd = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
    bim = torchattacks.BIM(model, eps=eps, alpha=alpha, steps=steps)
    return {"lib_pgd": pgd, "lib_ifgsm": bim}, f"torchattacks {torchattacks.__version__}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved(
    fns: dict[str, Callable[[], Any]], reps: int, device: torch.device
) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of each function per repetition; the order rotates by one each
    repetition, so every path runs first, second, … equally often over len(fns) repetitions."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    names = list(fns)
    for rep in range(reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            sync(device)
            wall, cpu = time.perf_counter(), time.process_time()
            fns[name]()
            sync(device)
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def ratio(times: dict, num: str, den: str, cpu: bool = False) -> float:
    """Median over repetitions of the paired ratio num/den (wall clock, or CPU time)."""
    k = 1 if cpu else 0
    pairs = [a[k] / b[k] for a, b in zip(times[num], times[den]) if b[k] > 0]
    return round(statistics.median(pairs), 4) if pairs else float("nan")


def median_s(times: dict, name: str) -> float:
    return statistics.median(t[0] for t in times[name])


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
