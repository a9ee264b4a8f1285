"""Image grids x | x_n | D(x_n) | x_n+δ | D(x_n+δ) | amplified δ, saved and sent to loggers.

Under each panel a caption says what happened to that image: the class the downstream model
reads (its name, not an index) and the PSNR against x, taken from the row's own columns, so a
grid can be read without `samples.csv` beside it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from miga.downstream.classifier import class_name
from miga.utils.images import PANELS

#: panel → (title, the row's prediction column, the row's PSNR-vs-x column)
CAPTIONS: dict[str, tuple[str, str | None, str | None]] = {
    "clean": ("x", "pred_clean", None),
    "noisy": ("x_n", None, "psnr_noisy"),
    "denoised": ("D(x_n)", "pred_denoised", "psnr_denoised"),
    "perturbed": ("x_n+δ", None, None),
    "attacked": ("D(x_n+δ)", "pred_attacked", "psnr_attacked"),
    "delta": ("δ", None, None),
}
CAPTION_PX = 30


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


def captions(row: dict[str, float], model: Any, amplify: float) -> list[list[str]]:
    """Two lines per panel: its title (+ PSNR in dB) and the class read (with ✓/✗ vs label)."""
    out = []
    label = row.get("label")
    for name in PANELS:
        title, pred_key, psnr_key = CAPTIONS[name]
        first = title if name != "delta" else f"{title} ×{amplify:g}"
        value = row.get(psnr_key) if psnr_key else None
        if value is not None and value == value:  # not NaN
            first += f" {value:.1f} dB"
        second = ""
        if pred_key and pred_key in row:
            pred = int(row[pred_key])
            mark = "" if label is None else (" ✓" if pred == int(label) else " ✗")
            second = class_name(model, pred) + mark
        out.append([first, second])
    return out


@functools.cache
def _font() -> ImageFont.FreeTypeFont:
    """DejaVu Sans (it has δ, ✓, ✗), from matplotlib's bundled fonts: present wherever we are."""
    from matplotlib import font_manager

    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), 10)


def caption_strip(lines: list[list[str]], panel_width: int) -> np.ndarray:
    """A white strip under the panels with each panel's caption lines (clipped to its width)."""
    strip = Image.new("RGB", (panel_width * len(lines), CAPTION_PX), "white")
    draw = ImageDraw.Draw(strip)
    font = _font()
    for k, panel_lines in enumerate(lines):
        for j, text in enumerate(panel_lines):
            while text and draw.textlength(text, font=font) > panel_width - 4:
                text = text[:-1]
            draw.text((k * panel_width + 2, 2 + 13 * j), text, fill="black", font=font)
    return np.asarray(strip)


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
        columns = outputs.get("columns", {})
        model = getattr(pl_module, "downstream", None)
        for k, index in enumerate(outputs["id"][:carried].tolist()):
            if len(self.rows) >= self.max_images:
                break
            panels = {name: outputs["images"][name][k] for name in PANELS}
            # numeric columns only (a text column such as `broken_by` has no caption)
            row = {
                key: float(value[k]) for key, value in columns.items() if torch.is_tensor(value)
            }
            image = grid_row(panels, self.amplify)
            strip = caption_strip(captions(row, model, self.amplify), image.shape[1] // len(PANELS))
            self.rows.append((int(index), np.concatenate([image, strip], axis=0)))

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.rows:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for index, row in self.rows:
            Image.fromarray(row).save(self.output_dir / f"{index:06d}.png")
        caption = " | ".join(CAPTIONS[name][0] for name in PANELS) + f" (δ ×{self.amplify:g})"
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image(
                    key="grids",
                    images=[row for _, row in self.rows],
                    caption=[f"id {index}: {caption}" for index, _ in self.rows],
                )
