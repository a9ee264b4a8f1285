"""Per-block activation checkpointing (recomputation in backward), switched on for a whole
network by the wrapper (`denoiser.activation_checkpointing`). The module is `recompute`, not
`checkpointing`: in this project a checkpoint is a weight file (miga.checkpoints), nothing else.

Checkpointing a network as ONE segment saves nothing: the backward pass recomputes all of its
activations at once, so the peak is the same (measured 0.94–1.01× for Restormer, 1.4–1.5× the
time). Memory falls only with many segments: each repeated block of an architecture (a Restormer
or Swin transformer block, a NAFNet block) keeps just its input during the forward pass and
recomputes its insides in backward, one block at a time, so the peak holds one block's
activations plus one tensor per block instead of every intermediate of every block.

Architectures opt in by deriving their repeated block from `RecomputedBlock`; the parameter
names do not change, so official weight files load as before.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as recompute_in_backward


class RecomputedBlock(nn.Module):
    """A block whose activations are recomputed in backward when `activation_checkpointing` is on.

    Only while gradients are being recorded: under `no_grad` (the clean pass D(x_n), evaluation)
    nothing is stored anyway and the block runs as usual. Non-reentrant checkpointing, so
    gradients reach an input that requires grad even though every parameter is frozen.
    """

    activation_checkpointing: bool = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.activation_checkpointing and torch.is_grad_enabled():
            return recompute_in_backward(super().__call__, *args, use_reentrant=False, **kwargs)
        return super().__call__(*args, **kwargs)


def set_activation_checkpointing(net: nn.Module, enabled: bool) -> int:
    """Switch checkpointing of every `RecomputedBlock` in `net`; returns how many there are."""
    blocks = [module for module in net.modules() if isinstance(module, RecomputedBlock)]
    for block in blocks:
        block.activation_checkpointing = enabled
    return len(blocks)
