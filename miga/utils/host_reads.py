"""Count the places where code reads a tensor's values back to the host.

On a GPU each such read (`bool(t)`, `t.item()`, `float(t)`, `t.tolist()`, `t.nonzero()`, a
boolean-mask index) waits for every queued kernel: the device idles while Python decides. CPU
tensors show the same calls, so the count is measurable without an accelerator: the attack
loop's test and `benchmarks.gpu` use it to hold the per-step path at zero reads.

    with HostReads() as reads:
        attack(inputs, victim)
    reads.count  # reads made by the miga package's own files (torch's, e.g. Adam's step, excluded)

A caller counts when its file, resolved, lies inside the package's real directory
(`Path.is_relative_to`), never when its path merely contains "miga/": in a checkout folder named
`miga` torch itself lives under `.../miga/.venv/lib/.../torch/`, and a substring would count
Adam's CPU step as ours.
"""

from __future__ import annotations

import sys
from collections import Counter
from functools import lru_cache
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

#: The real directory of the imported miga package (wherever the checkout is, whatever its name).
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=4096)
def _resolved(filename: str) -> Path:
    """A code object's file as an absolute path without symlinks (cached: called per read)."""
    return Path(filename).resolve()


def _is_mask(index: Any) -> bool:
    """A boolean tensor index (its result's shape depends on its values)."""
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


class HostReads(TorchFunctionMode):
    """A torch function mode recording each host read made by code in the files under `root`
    (a directory, by default the miga package's own; None counts every caller).

    `sites` keys name the calling file relative to `root`'s parent and the function, e.g.
    "miga/attacks/base.py:history"."""

    def __init__(self, root: Path | str | None = PACKAGE_ROOT) -> None:
        super().__init__()
        self.root = None if root is None else Path(root).resolve()
        self.sites: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        if func in _READS or (func in _INDEXING and len(args) > 1 and _is_mask(args[1])):
            caller = sys._getframe(1).f_code
            site = self._site(caller.co_filename)
            if site is not None:
                self.sites[f"{site}:{caller.co_name}"] += 1
        return func(*args, **kwargs)

    def _site(self, filename: str) -> str | None:
        """The caller's file as a `sites` key, or None when it is not under `root`."""
        if self.root is None:
            return Path(filename).as_posix()
        path = _resolved(filename)
        if not path.is_relative_to(self.root):
            return None
        return path.relative_to(self.root.parent).as_posix()

    @property
    def count(self) -> int:
        return sum(self.sites.values())
