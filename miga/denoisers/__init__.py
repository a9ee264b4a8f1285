"""Denoisers: one file per architecture, one wrapper (`Denoiser`), one checkpoint loader."""

from miga.checkpoints import CheckpointError, load_checkpoint, read_checkpoint
from miga.denoisers.wrapper import Denoiser

__all__ = ["CheckpointError", "Denoiser", "load_checkpoint", "read_checkpoint"]
