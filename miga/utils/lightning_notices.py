"""Two warnings Lightning prints on every run that a miga user cannot act on, ignored while a cell
runs: each by its exact message, category and the Lightning module that raises it, and the SLURM
one only where it is wrong. Every other warning, Lightning's included, still shows.

- Lightning 2.6.6 builds `torch.utils._pytree.LeafSpec()` to flatten the predict loader, which
  torch 2.14 deprecates (FutureWarning). The call is in `lightning.pytorch.utilities._pytree`:
  nothing in miga to change.
- "The `srun` command is available on your system but is not used": Lightning asks
  `SLURMEnvironment.detect()`, which warns wherever `srun` is on PATH and no `srun` started the
  process. It asks twice: when the Trainer picks its cluster environment, which a
  `Trainer(plugins=[env])` would skip, and again in `trainer.predict` (its checkpoint connector's
  `_parse_ckpt_path`), which nothing skips. Outside a SLURM job (`SLURM_JOB_ID` unset) on one
  node, the hint is wrong: there is no job to `srun` into and a one-node run needs none. Inside
  a job, or for a multi-node run (where a missing `srun` hangs), it stays: there a user can act.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from lightning.fabric.utilities.warnings import PossibleUserWarning


def in_slurm_job() -> bool:
    """True inside a SLURM allocation (batch job, array task, `salloc`, `srun`)."""
    return "SLURM_JOB_ID" in os.environ


@contextmanager
def lightning_notices_ignored(num_nodes: int = 1) -> Iterator[None]:
    """Ignore the two warnings above (the `srun` hint only outside a SLURM job on one node)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
            category=FutureWarning,
            module=r"lightning\.pytorch\.utilities\._pytree",
        )
        if not in_slurm_job() and num_nodes == 1:
            warnings.filterwarnings(
                "ignore",
                message=r"The `srun` command is available on your system but is not used",
                category=PossibleUserWarning,
                module=r"lightning\.fabric\.plugins\.environments\.slurm",
            )
        yield
