"""The one broadcast helper: one value per sample, stretched over that sample's image.

The attack loop, the budgets and the attacks keep per-sample bookkeeping as tensors of shape
(N,) (masks, norms, step sizes) and apply them to images of shape (N, C, H, W). Each used to
spell the reshape itself (`view(-1, 1, 1, 1)`, `view(-1, *([1] * (x.dim() - 1)))`); one helper
keeps the rule in one place and works for any image rank.
"""

from __future__ import annotations

from torch import Tensor


def per_sample(values: Tensor, like: Tensor) -> Tensor:
    """`values` (N,) reshaped to (N, 1, …, 1) so it broadcasts against `like` (N, …)."""
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def sample_norm(x: Tensor) -> Tensor:
    """Each sample's L2 norm over all its values, shape (N,)."""
    return x.flatten(1).norm(dim=1)
