"""Lightning's progress bar, following the attack's steps inside a batch.

Every figure it shows is live: during a batch the step (`step=3/10`), which costs no device read;
once the batch is done its final loss and success rate, labelled as the batch's. The loss is
not shown per step: reading it would make the device wait every step, which the attack loop
never does without a stopping rule (docs/architecture.md §4), and a figure read once and shown
for the rest of the batch would be stale.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from torch import Tensor


class AttackProgressBar(TQDMProgressBar):
    """TQDM bar over batches: the attack's step during a batch, the batch's outcome after it."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._steps = 0
        self._last: dict[str, Tensor] = {}

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_predict_start(trainer, pl_module)
        attack = getattr(pl_module, "attack", None)
        if attack is not None:
            attack.on_step = self._show_step
            self._steps = int(getattr(attack, "steps", 0))

    def _show_step(self, step: int, stats: dict[str, Tensor]) -> None:
        """Called by the attack after each step with device tensors: kept, never read here."""
        self._last = stats
        bar = self.predict_progress_bar
        if bar is None or bar.disable:
            return
        bar.set_postfix(step=f"{step + 1}/{self._steps}", refresh=False)
        bar.refresh()

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):  # noqa: ANN001
        super().on_predict_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
        bar = self.predict_progress_bar
        if bar is None or bar.disable:
            return
        postfix = {}
        if "loss" in self._last:  # the batch is over: one read, of its last step's mean loss
            postfix["batch_loss"] = f"{float(self._last['loss']):.3f}"
        columns = (outputs or {}).get("columns", {})
        if "success" in columns:
            success = columns["success"]
            valid = ~success.isnan()
            rate = float(success[valid].mean()) if valid.any() else float("nan")
            postfix["batch_success"] = f"{rate:.2f}"
        self._last = {}
        bar.set_postfix(postfix)
