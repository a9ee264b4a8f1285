"""Lightning's progress bar, showing the attack's running loss and active fraction per step."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class AttackProgressBar(TQDMProgressBar):
    """TQDM bar over batches whose postfix follows the attack inside the current batch."""

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_predict_start(trainer, pl_module)
        attack = getattr(pl_module, "attack", None)
        if attack is not None:
            attack.on_step = self._show_step

    def _show_step(self, step: int, stats: dict[str, float]) -> None:
        bar = self.predict_progress_bar
        if bar is not None and not bar.disable:
            bar.set_postfix(
                step=step + 1,
                loss=f"{stats['loss']:.3f}",
                active=f"{stats['active']:.2f}",
                refresh=False,
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
