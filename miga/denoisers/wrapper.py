"""The one wrapper every denoiser runs behind.

Between modules images are [0,1] RGB NCHW (docs/architecture.md §4); this wrapper owns what each
architecture needs around its forward pass: padding to the multiple it requires and cropping
back, optional tiling for large images, switching per-block activation checkpointing on the
architecture (`miga.denoisers.recompute`), clamping to [0,1] as the official test scripts
do, and freezing (the attack optimises δ, never the weights).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miga.checkpoints import load_checkpoint
from miga.denoisers.recompute import set_activation_checkpointing


class Denoiser(nn.Module):
    """A frozen denoiser mapping [0,1] RGB to [0,1] RGB at the input's size.

    Args:
        net: the architecture (one of `miga.denoisers.*`), built with the official arguments.
        checkpoint: official weight file, loaded strictly; `None` = random weights (warns).
        variant: human name of the expected checkpoint, used in error messages.
        pad_multiple: H and W are padded up to a multiple of this before `net` and cropped after.
        pad_mode: how the official test script pads: `reflect` (Restormer), `symmetric` (the
            mirror with the edge repeated, SwinIR's `cat([x, flip(x)])`), or any `F.pad` mode;
            falls back to `replicate` for images smaller than the pad.
        pad_always: pad to the *next* multiple even when H or W is one already, as SwinIR's
            official script does ((h//8+1)·8: 64 → 72).
        weight_key: the container entry the official loader reads (`params`), see
            `miga.checkpoints.unwrap_state_dict`.
        tile: if set, images larger than `tile` are processed in overlapping tiles of this size.
        tile_overlap: overlap between neighbouring tiles, averaged in the result.
        clamp: clamp the output to [0,1] (the official scripts do).
        activation_checkpointing: recompute each block's activations in backward (the
            architecture's `RecomputedBlock`s) to save memory; a network without such
            blocks warns and runs unchanged. Settable after construction.
        noise_level: the σ (0–255 scale) of the noise on the input. The non-blind contract:
            a network whose class sets `non_blind = True` (FFDNet) is called as
            `net(x, sigma)` with `sigma = noise_level / 255` for every image, so the σ the
            network is told is the σ of the cell's noise (the configs set
            `noise_level: ${noise.sigma}`); such a network without a `noise_level` is refused.
            For a blind network it only names the σ its checkpoint was trained for (configs
            interpolate the file name from it; provenance reads it back).
    """

    def __init__(
        self,
        net: nn.Module,
        checkpoint: str | Path | None = None,
        variant: str = "",
        pad_multiple: int = 1,
        pad_mode: str = "reflect",
        pad_always: bool = False,
        weight_key: str | None = None,
        tile: int | None = None,
        tile_overlap: int = 32,
        clamp: bool = True,
        activation_checkpointing: bool = False,
        noise_level: int | None = None,
    ) -> None:
        super().__init__()
        self.variant = variant or type(net).__name__
        self.checkpoint_path = None if checkpoint is None else str(checkpoint)
        self.non_blind = bool(getattr(net, "non_blind", False))
        if self.non_blind and noise_level is None:
            raise ValueError(
                f"{self.variant} is non-blind: set denoiser.noise_level to the noise's σ on the "
                "0–255 scale (the shipped configs take it from noise.sigma)"
            )
        self.net = load_checkpoint(net, checkpoint, self.variant, weight_key)
        self.pad_multiple = pad_multiple
        self.pad_mode = pad_mode
        self.pad_always = pad_always
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.clamp = clamp
        self.activation_checkpointing = activation_checkpointing
        self.noise_level = noise_level
        self.requires_grad_(False).eval()

    @property
    def activation_checkpointing(self) -> bool:
        return self._activation_checkpointing

    @activation_checkpointing.setter
    def activation_checkpointing(self, enabled: bool) -> None:
        blocks = set_activation_checkpointing(self.net, enabled)
        if enabled and not blocks:
            warnings.warn(
                f"{self.variant}: activation_checkpointing=true has no effect, "
                f"{type(self.net).__name__} has no checkpointable blocks",
                stacklevel=2,
            )
        self._activation_checkpointing = enabled

    def train(self, mode: bool = True) -> Denoiser:
        """Stay in eval mode: a denoiser under attack is never trained through this wrapper."""
        return super().train(False)

    def forward(self, x: Tensor, clamp: bool | None = None) -> Tensor:
        """D(x); `clamp` None follows `self.clamp`, a bool overrides it for this call (an
        attack that optimises through the raw output: `attack.clamp_output=false`)."""
        if self.tile is not None and max(x.shape[-2:]) > self.tile:
            out = self._tiled(x)
        else:
            out = self._padded(x)
        clamp = self.clamp if clamp is None else clamp
        return out.clamp(0.0, 1.0) if clamp else out

    def _padded(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        m = self.pad_multiple
        ph, pw = (
            ((h // m + 1) * m - h, (w // m + 1) * m - w) if self.pad_always else (-h % m, -w % m)
        )
        if ph or pw:
            x = pad_bottom_right(x, ph, pw, self.pad_mode if (ph < h and pw < w) else "replicate")
        return self._net(x)[..., :h, :w]

    def _net(self, x: Tensor) -> Tensor:
        """The architecture's forward, told the noise level when it is non-blind."""
        if not self.non_blind:
            return self.net(x)
        return self.net(x, x.new_full((len(x),), self.noise_level / 255.0))

    def _tiled(self, x: Tensor) -> Tensor:
        """Overlapping tiles, each padded and denoised alone.

        Each output pixel is taken from the tile in which it lies farthest from a cut (the
        seams sit mid-overlap), so where the overlap covers the receptive field the result
        equals the untiled one exactly, instead of blending in a tile's border artefacts.
        """
        h, w = x.shape[-2:]
        size, stride = self.tile, max(1, self.tile - self.tile_overlap)
        out = torch.empty_like(x)
        for top, row0, row1 in _tile_spans(h, size, stride):
            for left, col0, col1 in _tile_spans(w, size, stride):
                patch = self._padded(x[..., top : top + size, left : left + size])
                out[..., row0:row1, col0:col1] = patch[
                    ..., row0 - top : row1 - top, col0 - left : col1 - left
                ]
        return out


def pad_bottom_right(x: Tensor, ph: int, pw: int, mode: str) -> Tensor:
    """Pad H by `ph` and W by `pw` at the bottom/right; `symmetric` mirrors with the edge
    repeated (x, then x flipped), which `F.pad` does not offer."""
    if mode != "symmetric":
        return F.pad(x, (0, pw, 0, ph), mode=mode)
    h, w = x.shape[-2:]
    x = torch.cat([x, x.flip(-2)[..., :ph, :]], dim=-2)
    return torch.cat([x, x.flip(-1)[..., :pw]], dim=-1)[..., : h + ph, : w + pw]


def _tile_spans(length: int, size: int, stride: int) -> list[tuple[int, int, int]]:
    """(tile origin, first, last+1 output index it owns) for tiles covering [0, length)."""
    starts = _tile_starts(length, size, stride)
    cuts = [0] + [(a + b + size) // 2 for a, b in zip(starts, starts[1:])] + [length]
    return [(start, cuts[i], cuts[i + 1]) for i, start in enumerate(starts)]


def _tile_starts(length: int, size: int, stride: int) -> list[int]:
    """Tile origins covering [0, length) with the last tile flush to the end."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size, stride))
    return starts + [length - size]
