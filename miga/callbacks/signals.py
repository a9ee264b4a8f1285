"""Stop a cell cleanly on SIGTERM (what SLURM and `kill` send before SIGKILL).

Lightning records SIGTERM but its predict loop keeps going; this callback ends the run right
after the batch in flight has been written, so the grace period is not spent on work that a
SIGKILL would throw away. A re-run resumes from the rows on disk.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback


class Interrupted(RuntimeError):
    """The run was asked to stop; finished rows are on disk."""


class StopOnSigterm(Callback):
    """Raise `Interrupted` at the end of the first batch after a SIGTERM (after writers ran)."""

    def __init__(self) -> None:
        self.batches = 0

    def on_predict_batch_end(self, trainer: L.Trainer, *args, **kwargs) -> None:  # noqa: ANN002
        self.batches += 1
        if trainer.received_sigterm:
            raise Interrupted(
                f"SIGTERM received: stopped after {self.batches} batches; finished rows are saved, "
                "re-run the same command to resume"
            )
