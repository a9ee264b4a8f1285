"""A cell's results folder: provenance written once, stale results never reused.

Prepared at cell start, before the results writer (miga/callbacks/results_writer.py) adds rows:
it shares the writer's atomic write and error, hence its place beside it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any, TextIO

from miga.callbacks.results_writer import ResultsWriteError, atomic_write_text
from miga.utils.results_dir import (
    LOCK_FILE,
    PARTS_DIR,
    PROVENANCE_FILE,
    RESULTS_FORMAT,
    SAMPLES_FILE,
    SUMMARY_FILE,
)


class StaleResultsError(RuntimeError):
    """The folder holds results of another configuration or of an incompatible version."""


class CellLockedError(RuntimeError):
    """Another process is writing this cell's results."""


def lock_cell(output_dir: Path) -> TextIO:
    """Take an exclusive lock on the cell folder for this process's lifetime (or refuse).

    The lock is an `flock` on `<cell>/.lock`: the OS releases it when the process dies, so a
    killed run never leaves a stale lock behind.
    """
    handle = open(output_dir / LOCK_FILE, "a+")  # noqa: SIM115 (held until exit)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise CellLockedError(
            f"{output_dir} is being written by another process (pid {holder}); wait for it "
            "or choose another hydra.run.dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def prepare_results_dir(
    output_dir: Path, record: dict[str, Any], resume: bool, rank: int = 0
) -> TextIO | None:
    """Create and lock `output_dir`, check earlier results belong to this config, write
    provenance; returns the lock (keep it referenced for the process's lifetime).

    With `resume=False` earlier rows are deleted; with `resume=True` rows made under another
    config hash or results format raise `StaleResultsError` instead of being silently mixed
    in. Only rank 0 prepares: DDP's other ranks write their own part files into it.
    """
    if rank != 0:
        return None
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ResultsWriteError(
            err.errno, f"cannot create the results folder {output_dir}: {err.strerror or err}"
        ) from err
    lock = lock_cell(output_dir)
    previous = output_dir / PROVENANCE_FILE
    parts = output_dir / PARTS_DIR
    if not resume:
        shutil.rmtree(parts, ignore_errors=True)
        for name in (SAMPLES_FILE, SUMMARY_FILE):
            (output_dir / name).unlink(missing_ok=True)
    elif parts.is_dir() and any(parts.iterdir()) and previous.is_file():
        old = json.loads(previous.read_text())
        if old.get("results_format") != RESULTS_FORMAT:
            raise StaleResultsError(
                f"{output_dir} holds results in format {old.get('results_format')!r}; this "
                f"version writes format {RESULTS_FORMAT}: pass resume=false or another folder"
            )
        old_hash = old.get("config_hash")
        if old_hash != record["config_hash"]:
            raise StaleResultsError(
                f"{output_dir} holds results of another config (hash {str(old_hash)[:12]}, now "
                f"{record['config_hash'][:12]}): choose another hydra.run.dir or pass resume=false"
            )
    record = {"results_format": RESULTS_FORMAT, **record}
    atomic_write_text(previous, json.dumps(record, indent=2, default=str) + "\n")
    return lock
