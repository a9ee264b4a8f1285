"""The cell's intra-op thread count: set from the config, once, at cell start.

On CPU the thread count decides how matrix products and convolutions split their reductions,
so it changes float rounding, hence δ, hence borderline outcomes (the held-out demo success
moves by two images between 1 and 2 threads). It is therefore part of the config (`threads`,
an explicit integer, never "whatever the machine has") and of the config hash, and
`provenance.json` records the value torch reads back. joblib reuses worker processes between
cells: setting it at every cell start also stops one cell's count leaking into the next.

Inter-op threads are left alone: torch allows setting them only before any parallel work
starts in the process (a reused worker would raise), and eager CPU kernels of a cell do not
run inter-op tasks, so they do not move the numbers; provenance records their value anyway.
"""

from __future__ import annotations

import torch


def apply_threads(threads: object) -> int:
    """Set torch's intra-op thread count to `threads` (the config's `threads` key); return the
    value torch reads back. Anything but a positive integer is refused with the key's name."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(
            f"config key 'threads' must be a positive integer (the intra-op CPU thread count, "
            f"e.g. threads=4), got {threads!r}"
        )
    torch.set_num_threads(threads)
    return torch.get_num_threads()
