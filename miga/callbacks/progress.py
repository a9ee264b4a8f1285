"""Lightning's progress bar, showing the attack's step, and its running loss and active fraction
every `loss_every` steps (reading them waits for the device; the loop itself never does)."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from torch import Tensor


class AttackProgressBar(TQDMProgressBar):
    """TQDM bar over batches whose postfix follows the attack inside the current batch."""

    def __init__(self, loss_every: int = 10, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.loss_every = loss_every
        self._loss = self._active = float("nan")

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_predict_start(trainer, pl_module)
        attack = getattr(pl_module, "attack", None)
        if attack is not None:
            attack.on_step = self._show_step

    def _show_step(self, step: int, stats: dict[str, Tensor]) -> None:
        bar = self.predict_progress_bar
        if bar is None or bar.disable:
            return
        if step % self.loss_every == 0:  # one host read every `loss_every` steps
            self._loss, self._active = float(stats["loss"]), float(stats["active"])
        bar.set_postfix(
            step=step + 1, loss=f"{self._loss:.3f}", active=f"{self._active:.2f}", refresh=False
        )
        bar.refresh()

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):  # noqa: ANN001
        super().on_predict_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
        columns = (outputs or {}).get("columns", {})
        if "success" in columns and self.predict_progress_bar is not None:
            success = columns["success"]
            valid = ~success.isnan()
            rate = float(success[valid].mean()) if valid.any() else float("nan")
            self.predict_progress_bar.set_postfix(batch_success=f"{rate:.2f}")
