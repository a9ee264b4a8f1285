"""AdversarialTraining: one fine-tuning step of a denoiser against the configured attack.

Per batch (x, x_n, sample ids):

1. labels: the downstream classifier's prediction f(x) on the clean crop (pseudo-labels, no
   annotation needed; only when a classifier is configured);
2. inner maximisation: δ* from the configured `attack` — the one attack loop of `miga.attacks`,
   the same object `miga.run` evaluates with — through the *current* denoiser, with the
   denoiser's parameters frozen for the duration (no gradient reaches the weights from the
   attack) and δ* detached (no gradient reaches the attack from the training loss);
3. outer minimisation: the `objective` on D(x_n) and D(x_n+δ*), one optimiser step on the
   denoiser's network.

Logged per step (progress bar and logger): the loss and its parts, the clean PSNR of D(x_n),
the PSNR of D(x_n+δ*) and, with a classifier, the training attack's success: the fraction of
crops whose label f(x) is flipped on D(x_n+δ*).

The denoiser is the project's `Denoiser` wrapper (padding, clamping, the strict loader): it
trains through the very forward pass `miga.run` attacks. The wrapper keeps its network in eval
mode, so batch-norm statistics and dropout stay as loaded (a fine-tuning choice; the demo DnCNN
has neither).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from miga.attacks.base import Attack
from miga.attacks.state import AttackInputs, Victim
from miga.metrics.quality import psnr
from miga.robust.objectives import Objective


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """`module`'s parameters do not require grad inside the block (restored after): the inner
    attack differentiates to δ only, never accumulating gradients into the weights."""
    previous = [(p, p.requires_grad) for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in previous:
            parameter.requires_grad_(flag)


class AdversarialTraining(L.LightningModule):
    """Fine-tunes `denoiser.net` on the `objective`, δ* made by `attack` inside each step.

    Args:
        denoiser: a `miga.denoisers.Denoiser` (its `net` is trained; the wrapper is kept).
        attack: any attack of the `attack` group (the inner maximisation).
        objective: the `objective` group's loss.
        downstream: the classifier that gives pseudo-labels, the attack's downstream model and the
            objective's semantic term (the one trained against); None: no labels.
        lr: Adam learning rate, cosine-annealed to 0 over `steps`.
        steps: optimiser steps of the whole run (the schedule's length).
        seed: the seed of the per-sample streams the attack draws from (random starts).
    """

    def __init__(
        self,
        denoiser: nn.Module,
        attack: Attack,
        objective: Objective,
        downstream: nn.Module | None = None,
        lr: float = 1e-4,
        steps: int = 300,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if objective.uses_labels and downstream is None:
            raise ValueError(
                f"objective {type(objective).__name__} needs a downstream classifier: set "
                "`downstream=` (e.g. downstream=demo)"
            )
        self.denoiser = denoiser
        self.attack = attack
        self.objective = objective
        self.downstream = downstream
        if downstream is not None:
            downstream.requires_grad_(False).eval()
        self.net.requires_grad_(True)  # the wrapper froze it; fine-tuning trains it
        self.lr = lr
        self.steps = steps
        self.seed = seed
        #: Called with δ* as it enters the training forward pass (tests observe it here).
        self.on_delta: Any = None

    @property
    def net(self) -> nn.Module:
        """The network being trained (inside the wrapper; registered once, as `denoiser.net`)."""
        return self.denoiser.net

    # -- the inner maximisation -------------------------------------------------------------

    @torch.no_grad()
    def pseudo_labels(self, clean: Tensor) -> Tensor | None:
        """f(x): the classifier's top-1 class on the clean crop (None without a classifier)."""
        if self.downstream is None:
            return None
        return self.downstream(clean).argmax(dim=1)

    def inner_attack(
        self,
        clean: Tensor,
        noisy: Tensor,
        denoised: Tensor,
        index: Tensor,
        labels: Tensor | None,
    ) -> Tensor:
        """δ* of the configured attack through the current denoiser, weights frozen, detached.

        `denoised` is D(x_n) of the training step's own forward pass (detached here): the
        reference output is computed once per step, not once for the attack and again for the
        loss."""
        inputs = AttackInputs(
            clean=clean,
            noisy=noisy,
            denoised=denoised.detach(),
            index=index,
            label=labels,
            seed=self.seed,
        )
        with frozen(self.denoiser), torch.enable_grad():
            result = self.attack(inputs, Victim(self.denoiser, self.downstream))
        return result.delta.detach()

    # -- the outer minimisation -------------------------------------------------------------

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        clean, noisy, index = batch["image"], batch["noisy"], batch["index"]
        labels = self.pseudo_labels(clean)
        denoised = self.denoiser(noisy)
        delta = self.inner_attack(clean, noisy, denoised, index, labels)
        if self.on_delta is not None:
            self.on_delta(delta)
        attacked = self.denoiser(noisy + delta)
        logits = self.downstream(attacked) if self.objective.uses_labels else None
        loss, parts = self.objective(denoised, attacked, clean, logits, labels)
        with torch.no_grad():
            metrics = {
                "train/loss": loss.detach(),
                **{f"train/{name}": value.detach() for name, value in parts.items()},
                "train/psnr_clean": psnr(denoised, clean).mean(),
                "train/psnr_adv": psnr(attacked, clean).mean(),
            }
            if labels is not None:
                seen = logits if logits is not None else self.downstream(attacked)
                metrics["train/attack_success"] = (seen.argmax(dim=1) != labels).float().mean()
        bar = {"train/psnr_clean", "train/attack_success", "train/loss"}
        for name, value in metrics.items():
            self.log(name, value, prog_bar=name in bar, batch_size=len(clean))
        return loss

    def configure_optimizers(self):  # noqa: ANN201
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, self.steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # -- checkpoints: only what training changes --------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the denoiser's weights in `last.ckpt`, not the frozen classifier's or the
        attack's (megabytes per save that the config rebuilds anyway)."""
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if k.startswith("denoiser.")
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Put the config's frozen modules back beside the saved weights, so Lightning's strict
        load still checks every key of the network."""
        own = {k: v for k, v in self.state_dict().items() if not k.startswith("denoiser.")}
        checkpoint["state_dict"] = {**own, **checkpoint["state_dict"]}
        # `last.ckpt` is written at an epoch end, so the epoch it records is finished. Lightning
        # 2.6 restores that epoch's batch counter (and `is_last_batch`) into the *next* epoch,
        # which then ends before its first batch, and every later one too: a resumed run would
        # loop over empty epochs. The next epoch starts with its batch counter at zero.
        progress = checkpoint.get("loops", {}).get("fit_loop", {})
        batches = progress.get("epoch_loop.batch_progress")
        if batches is not None and batches.get("is_last_batch"):
            batches["current"] = {key: 0 for key in batches["current"]}
            batches["is_last_batch"] = False

    def exported_state_dict(self) -> dict[str, Tensor]:
        """The network's bare state dict, the layout `miga/zoo/weights/demo_dncnn.pt` has and
        the `Denoiser` wrapper loads (`denoiser.checkpoint=`)."""
        return {k: v.detach().cpu().contiguous().clone() for k, v in self.net.state_dict().items()}
