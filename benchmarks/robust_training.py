"""Training images/s of `miga.robust` against a hand-written adversarial-training loop.

    python -m benchmarks.robust_training                  # demo DnCNN, HAT with L∞ PGD, CPU
    python -m benchmarks.robust_training steps=10 reps=3 attack.steps=5 batch_size=8

Arguments are overrides of conf/robust.yaml (the app's own config) plus `reps` and `steps`
(timed training steps per repetition). Both paths train a copy of the same denoiser, from the
same weights, on the same batches (the app's loader, materialised once), with the same inner
attack arithmetic (L∞ PGD on the output MSE: random start, `attack.steps` sign steps of α, the
shared ε), the same objective (HAT, α from the config) and Adam at the same learning rate:

- `miga_robust`: `Trainer.fit` of `AdversarialTraining` for `steps` steps (Lightning's loop,
  the one attack loop with its per-sample bookkeeping, logging, no checkpoints);
- `hand_written`: plain torch, the textbook loop: for each batch, PGD with the weights'
  `requires_grad` off, then one Adam step on the HAT loss.

Repetitions alternate the two paths (order rotating). The ratio is miga.robust's images/s over
the hand-written loop's; results go to benchmarks/results/<machine>-robust-training.json.
Without a downstream classifier (no pseudo-labels): the time is the denoiser's.
"""

from __future__ import annotations

import copy
import json
import sys
import time

import lightning as L
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from torch.utils.data import DataLoader

from benchmarks.compose import CONF, RESULTS, ROOT, machine_name
from miga.robust.__main__ import build_module, training_loader
from miga.utils import config as _config  # noqa: F401  (registers resolvers)
from miga.utils.threads import apply_threads

DEFAULTS = ["attack=pgd", "attack.steps=5", "~downstream", "logger=none", "progress_bar=false"]


def hand_written(net: torch.nn.Module, batches: list[dict], eps: float, alpha: float,
                 attack_steps: int, hat_alpha: float, lr: float) -> None:
    """The loop a researcher writes by hand: PGD inner maximisation, Adam outer step."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    denoise = lambda x: net(x).clamp(0, 1)  # noqa: E731  (the wrapper clamps too)
    for batch in batches:
        clean, noisy = batch["image"], batch["noisy"]
        net.requires_grad_(False)
        delta = (torch.rand_like(noisy) * 2 - 1) * eps
        for _ in range(attack_steps):
            delta.requires_grad_(True)
            loss = F.mse_loss(denoise(noisy + delta), clean)
            (grad,) = torch.autograd.grad(loss, delta)
            delta = (delta.detach() + alpha * grad.sign()).clamp(-eps, eps)
            delta = (noisy + delta).clamp(0, 1) - noisy
        net.requires_grad_(True)
        natural = F.mse_loss(denoise(noisy), clean)
        adversarial = F.mse_loss(denoise(noisy + delta.detach()), clean)
        optimizer.zero_grad(set_to_none=True)
        ((natural + hat_alpha * adversarial) / (1 + hat_alpha)).backward()
        optimizer.step()


def main(argv: list[str]) -> dict:
    options = dict(arg.split("=", 1) for arg in argv if arg.split("=", 1)[0] in ("reps", "steps"))
    overrides = DEFAULTS + [a for a in argv if a.split("=", 1)[0] not in ("reps", "steps")]
    reps, steps = int(options.get("reps", 3)), int(options.get("steps", 5))
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("robust", overrides=overrides + [f"steps={steps}", f"epoch_steps={steps}"],
                      return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.root = str(ROOT)
    threads = apply_threads(cfg.threads)
    L.seed_everything(cfg.seed)
    template = build_module(cfg)
    batches = list(training_loader(cfg))
    start = copy.deepcopy(template.denoiser.net.state_dict())

    def robust() -> None:
        module = build_module(cfg)
        module.net.load_state_dict(start)
        trainer = L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False,
                            accelerator="cpu")
        trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None))

    def plain() -> None:
        net = copy.deepcopy(template.denoiser.net)
        net.load_state_dict(start)
        hand_written(net, batches, cfg.budget.epsilon, cfg.attack.optimizer.lr,
                     cfg.attack.steps, cfg.objective.alpha, cfg.lr)

    paths = {"miga_robust": robust, "hand_written": plain}
    times: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    for rep in range(reps):
        for name in names[rep % 2:] + names[: rep % 2]:
            began = time.perf_counter()
            paths[name]()
            times[name].append(time.perf_counter() - began)
    images = steps * cfg.batch_size
    median = {n: sorted(t)[len(t) // 2] for n, t in times.items()}
    rate = {n: images / s for n, s in median.items()}
    result = {
        "machine": machine_name(torch.device("cpu")),
        "threads": threads,
        "overrides": overrides,
        "batch_size": cfg.batch_size,
        "crop": cfg.crop,
        "attack_steps": cfg.attack.steps,
        "train_steps_per_rep": steps,
        "reps": reps,
        "seconds": times,
        "images_per_s": {n: round(v, 3) for n, v in rate.items()},
        "ratio_miga_over_hand": round(rate["miga_robust"] / rate["hand_written"], 3),
    }
    out = RESULTS / f"{result['machine']}-robust-training.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
