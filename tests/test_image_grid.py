"""Image-grid captions: what each panel says, and that it is drawn where it belongs."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from miga.callbacks.image_grid import CAPTION_PX, PANELS, caption_strip, captions, grid_row
from miga.downstream.classifier import class_name, imagenet_class_names


class Named(nn.Module):
    class_names = ["cat", "dog", "moped"]


def test_imagenet_names_come_in_index_order() -> None:
    names = imagenet_class_names()
    assert len(names) == 1000
    assert (names[0], names[281], names[285], names[665]) == (
        "tench",
        "tabby",
        "Egyptian cat",
        "moped",
    )


def test_class_name_falls_back_to_the_index() -> None:
    assert class_name(Named(), 2) == "moped"
    assert class_name(Named(), 7) == "7"  # out of the model's range
    assert class_name(None, 3) == "3"


def test_captions_read_the_rows_columns() -> None:
    row = {
        "label": 0.0,
        "pred_clean": 0.0,
        "pred_denoised": 0.0,
        "pred_attacked": 2.0,
        "psnr_noisy": 20.26,
        "psnr_denoised": 29.54,
        "psnr_attacked": float("nan"),
    }
    lines = dict(zip(PANELS, captions(row, Named(), amplify=10)))
    assert lines["clean"] == ["x", "cat ✓"]
    assert lines["noisy"] == ["x_n 20.3 dB", ""]
    assert lines["denoised"] == ["D(x_n) 29.5 dB", "cat ✓"]
    assert lines["attacked"] == ["D(x_n+δ)", "moped ✗"]  # NaN PSNR is left out
    assert lines["delta"] == ["δ ×10", ""]


def test_the_strip_draws_each_caption_under_its_own_panel() -> None:
    width = 48
    panels = {name: torch.rand(3, width, width) for name in PANELS}
    image = grid_row(panels, amplify=10)
    lines = [["x", "cat"], ["", ""], ["a caption far too long for one narrow panel", ""]]
    lines += [["", ""]] * 3
    strip = caption_strip(lines, width)
    assert strip.shape == (CAPTION_PX, image.shape[1], 3)
    inked = (strip < 128).any(axis=(0, 2))  # columns with dark (text) pixels
    per_panel = inked.reshape(len(PANELS), width).any(axis=1)
    assert per_panel.tolist() == [True, False, True, False, False, False]
    # the long caption is clipped to its panel: nothing spills into the panel to its right
    assert not inked[3 * width : 4 * width].any()
    assert np.asarray(strip)[:, width : 2 * width].min() == 255
