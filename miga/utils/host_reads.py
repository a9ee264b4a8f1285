"""Count the places where code reads a tensor's values back to the host.

On a GPU each such read (`bool(t)`, `t.item()`, `float(t)`, `t.tolist()`, `t.nonzero()`, a
boolean-mask index) waits for every queued kernel: the device idles while Python decides. CPU
tensors show the same calls, so the count is measurable without an accelerator: the attack
loop's test and `benchmarks.gpu` use it to hold the per-step path at zero reads.

    with HostReads(under="miga/") as reads:
        attack(inputs, victim)
    reads.count  # reads made by code under miga/ (torch's own, e.g. Adam's CPU step, excluded)
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

_READS = {
    torch.Tensor.__bool__,
    torch.Tensor.__float__,
    torch.Tensor.__int__,
    torch.Tensor.__index__,
    torch.Tensor.item,
    torch.Tensor.tolist,
    torch.Tensor.nonzero,
    torch.nonzero,
}
_INDEXING = {torch.Tensor.__getitem__, torch.Tensor.__setitem__}


def _is_mask(index: Any) -> bool:
    """A boolean tensor index (its result's shape depends on its values)."""
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


class HostReads(TorchFunctionMode):
    """A torch function mode recording each host read made by code under `under` (a path
    fragment of the calling file; None counts every caller)."""

    def __init__(self, under: str | None = "miga/") -> None:
        super().__init__()
        self.under = under
        self.sites: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        if func in _READS or (func in _INDEXING and len(args) > 1 and _is_mask(args[1])):
            caller = sys._getframe(1).f_code
            path = Path(caller.co_filename).as_posix()
            if self.under is None or self.under in path:
                self.sites[f"{path.split(self.under or '/')[-1]}:{caller.co_name}"] += 1
        return func(*args, **kwargs)

    @property
    def count(self) -> int:
        return sum(self.sites.values())
