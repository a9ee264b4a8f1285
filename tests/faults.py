"""Test-only faults, outside the package: the process dies (like SIGKILL) after N batches have
been written, or in the middle of writing one named results file.

`python -m tests.faults <miga.run arguments>` is `python -m miga.run` with the faults the
environment asks for (`MIGA_FAULT_EXIT_AFTER_BATCHES`, `MIGA_FAULT_DIE_WRITING`) installed
first. They are never config, so a fault-injection test runs the real command line with an
unchanged config hash (its resume must find the killed run's folder and rows), and nothing of
them ships in `miga`: they wrap the package's own parts from outside (Lightning's Trainer gets
one more callback; the results writer's one file writer dies half-way through one file).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

FAULT_VARIABLE = "MIGA_FAULT_EXIT_AFTER_BATCHES"
WRITE_FAULT_VARIABLE = "MIGA_FAULT_DIE_WRITING"


class ExitAfterBatches(Callback):
    """`os._exit(137)` once `batches` predict batches have ended (after their rows are written:
    it is the Trainer's last callback, after the results writer)."""

    def __init__(self, batches: int) -> None:
        self.batches = batches
        self.seen = 0

    def on_predict_batch_end(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        self.seen += 1
        if self.seen >= self.batches:
            os._exit(137)


def _exit_after_batches(batches: int) -> None:
    """Every Trainer built from now on ends its callbacks with `ExitAfterBatches(batches)`."""
    init = L.Trainer.__init__

    def patched(self: L.Trainer, *args: Any, callbacks: Any = None, **kwargs: Any) -> None:
        callbacks = [*(callbacks or []), ExitAfterBatches(batches)]
        init(self, *args, callbacks=callbacks, **kwargs)

    L.Trainer.__init__ = patched


def _die_writing(name: str) -> None:
    """The results writer's atomic write of the file called `name` writes half of its text to
    the temporary file, flushes it to disk and dies: a crash before the rename."""
    from miga.callbacks import results_writer

    write = results_writer.atomic_write_text

    def patched(path: Path, text: str) -> None:
        if path.name != name:
            write(path, text)
            return
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with open(tmp, "w", newline="") as handle:
            handle.write(text[: len(text) // 2])
            handle.flush()
            os.fsync(handle.fileno())
        os._exit(137)

    results_writer.atomic_write_text = patched


def install() -> None:
    """Install the faults the environment names; none when it names none."""
    if batches := os.environ.get(FAULT_VARIABLE):
        _exit_after_batches(int(batches))
    if name := os.environ.get(WRITE_FAULT_VARIABLE):
        _die_writing(name)


if __name__ == "__main__":
    from miga.run import main
    from miga.utils.renamed import refuse_renamed_keys

    install()
    refuse_renamed_keys(sys.argv[1:])
    main()
