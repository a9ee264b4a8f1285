"""Per-sample random streams.

Noise and random starts are drawn from a generator seeded by (seed, stream, dataset index), not
from the global RNG, so a sample's numbers do not depend on batch size, world size, data order
or on whether the run was resumed (docs/architecture.md §6).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import Tensor


def sample_seed(seed: int, index: int, stream: str) -> int:
    """A 63-bit seed that is a stable function of (seed, stream, index) across runs and machines."""
    digest = hashlib.blake2b(f"{seed}/{stream}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def per_sample_randn(
    shape: Sequence[int], indices: Tensor, seed: int, stream: str, like: Tensor
) -> Tensor:
    """Standard normal noise of `shape` per sample (dim 0 = len(indices)), on `like`'s device."""
    return _per_sample(torch.randn, shape, indices, seed, stream, like)


def per_sample_rand(
    shape: Sequence[int], indices: Tensor, seed: int, stream: str, like: Tensor
) -> Tensor:
    """Uniform [0,1) noise of `shape` per sample, drawn like `per_sample_randn`."""
    return _per_sample(torch.rand, shape, indices, seed, stream, like)


def _per_sample(draw, shape, indices, seed, stream, like) -> Tensor:  # noqa: ANN001
    generator = torch.Generator(device="cpu")
    samples = []
    for index in indices.tolist():
        generator.manual_seed(sample_seed(seed, int(index), stream))
        samples.append(draw(tuple(shape), generator=generator, dtype=torch.float32))
    return torch.stack(samples).to(device=like.device, dtype=like.dtype)
