"""Test-only faults: the process dies (like SIGKILL) after N batches have been written, or in
the middle of writing one named results file.

Enabled by the environment variables `MIGA_FAULT_EXIT_AFTER_BATCHES` and
`MIGA_FAULT_DIE_WRITING`, never by config, so that fault-injection tests run the real command
line with an unchanged config hash.
"""

from __future__ import annotations

import os
from typing import IO

import lightning as L
from lightning.pytorch.callbacks import Callback

FAULT_VARIABLE = "MIGA_FAULT_EXIT_AFTER_BATCHES"
WRITE_FAULT_VARIABLE = "MIGA_FAULT_DIE_WRITING"


def write_or_die(handle: IO[str], text: str, name: str) -> None:
    """Write `text`; but if the environment names this file, write half of it, flush it to disk
    and die as SIGKILL would — a crash while a part file is being written."""
    if os.environ.get(WRITE_FAULT_VARIABLE) != name:
        handle.write(text)
        return
    handle.write(text[: len(text) // 2])
    handle.flush()
    os.fsync(handle.fileno())
    os._exit(137)


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
