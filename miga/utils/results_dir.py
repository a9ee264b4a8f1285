"""A cell's results folder: provenance written once, stale results never reused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from miga.callbacks.results_writer import PARTS_DIR, SAMPLES_FILE, SUMMARY_FILE, atomic_write_text

PROVENANCE_FILE = "provenance.json"


class StaleResultsError(RuntimeError):
    """The folder holds results of another configuration."""


def prepare_results_dir(output_dir: Path, record: dict[str, Any], resume: bool) -> None:
    """Create `output_dir`, check earlier results belong to this config, write provenance.

    With `resume=False` earlier rows are deleted; with `resume=True` rows made under another
    config hash raise `StaleResultsError` instead of being silently mixed in.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    previous = output_dir / PROVENANCE_FILE
    parts = output_dir / PARTS_DIR
    if not resume:
        shutil.rmtree(parts, ignore_errors=True)
        for name in (SAMPLES_FILE, SUMMARY_FILE):
            (output_dir / name).unlink(missing_ok=True)
    elif parts.is_dir() and any(parts.iterdir()) and previous.is_file():
        old_hash = json.loads(previous.read_text()).get("config_hash")
        if old_hash != record["config_hash"]:
            raise StaleResultsError(
                f"{output_dir} holds results of another config (hash {str(old_hash)[:12]}, now "
                f"{record['config_hash'][:12]}): choose another hydra.run.dir or pass resume=false"
            )
    atomic_write_text(previous, json.dumps(record, indent=2, default=str) + "\n")
