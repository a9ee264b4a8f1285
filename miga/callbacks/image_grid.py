"""Image grids x | x_n | D(x_n) | x_n+δ | D(x_n+δ) | amplified δ, saved and sent to loggers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from PIL import Image
from torch import Tensor

PANELS = ("clean", "noisy", "denoised", "perturbed", "attacked", "delta")


def to_uint8(image: Tensor) -> np.ndarray:
    """[0,1] CHW float → HWC uint8 (W&B saves float images unscaled, i.e. black)."""
    return (
        (image.detach().float().cpu() * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
    )


def grid_row(panels: dict[str, Tensor], amplify: float) -> np.ndarray:
    """One image's panels side by side; δ shown as 0.5 + amplify·δ."""
    shown = dict(panels)
    shown["delta"] = (0.5 + amplify * panels["delta"]).clamp(0, 1)
    return np.concatenate([to_uint8(shown[name]) for name in PANELS], axis=1)


class ImageGrids(Callback):
    """Keeps the first `max_images` samples' panels; at the end writes `grids/<id>.png`.

    Loggers that can show images (`log_image`, e.g. W&B) receive them too.
    """

    def __init__(self, output_dir: str | Path, max_images: int = 8, amplify: float = 10.0) -> None:
        self.output_dir = Path(output_dir) / "grids"
        self.max_images = max_images
        self.amplify = amplify
        self.rows: list[tuple[int, np.ndarray]] = []

    def on_predict_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if outputs is None or len(self.rows) >= self.max_images:
            return
        carried = len(outputs["images"]["clean"])
        for k, index in enumerate(outputs["id"][:carried].tolist()):
            if len(self.rows) >= self.max_images:
                break
            panels = {name: outputs["images"][name][k] for name in PANELS}
            self.rows.append((int(index), grid_row(panels, self.amplify)))

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.rows:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for index, row in self.rows:
            Image.fromarray(row).save(self.output_dir / f"{index:06d}.png")
        caption = " | ".join(PANELS) + f" (δ ×{self.amplify:g})"
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(
                    key="grids",
                    images=[row for _, row in self.rows],
                    caption=[f"id {index}: {caption}" for index, _ in self.rows],
                )

    @staticmethod
    def images_for(outcome_images: dict[str, Tensor], count: int) -> dict[str, Tensor]:
        """The first `count` samples' panels, on the CPU (what a prediction carries)."""
        return {name: torch.as_tensor(outcome_images[name][:count]).cpu() for name in PANELS}
