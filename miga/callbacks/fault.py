"""A test-only fault: the process dies (like SIGKILL) after N batches have been written.

Enabled by the environment variable `MIGA_FAULT_EXIT_AFTER_BATCHES`, never by config, so that
fault-injection tests run the real command line with an unchanged config hash.
"""

from __future__ import annotations

import os

import lightning as L
from lightning.pytorch.callbacks import Callback

FAULT_VARIABLE = "MIGA_FAULT_EXIT_AFTER_BATCHES"


class ExitAfterBatches(Callback):
    """`os._exit(137)` once `batches` predict batches have ended (after their rows are written)."""

    def __init__(self, batches: int) -> None:
        self.batches = batches
        self.seen = 0

    def on_predict_batch_end(self, trainer: L.Trainer, *args, **kwargs) -> None:  # noqa: ANN002
        self.seen += 1
        if self.seen >= self.batches:
            os._exit(137)


def fault_callbacks() -> list[Callback]:
    """The fault hook if the environment asks for one, else nothing."""
    value = os.environ.get(FAULT_VARIABLE)
    return [ExitAfterBatches(int(value))] if value else []
