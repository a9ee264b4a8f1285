"""Resumable per-image results: one part file per batch, merged into `samples.csv`.

Each batch's rows are written to `rows/rank<r>-<first id>.csv` by write-then-rename, so a crash
loses at most the batch in flight and never leaves a half-written file; a re-run reads the ids
already there and skips them. At the end the parts are merged (sorted by id, duplicates
refused) into `samples.csv`, and `summary.json` is computed from exactly those rows.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from miga.metrics.summary import summarize
from miga.utils.results_dir import PARTS_DIR, SAMPLES_FILE, SUMMARY_FILE


class ResultsWriteError(OSError):
    """Results could not be written (disk full, read-only folder, …); earlier files intact."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so readers see the old file or the new one, never a part.

    On failure (disk full, quota, permissions) the temporary file is removed, the previous
    version of `path` is untouched, and `ResultsWriteError` names the file and the reason.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ResultsWriteError(
            err.errno, f"cannot write results file {path}: {err.strerror or err}"
        ) from err


def rows_to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV text with `id` first; floats in `repr` form so values round-trip exactly."""
    columns = list(rows[0])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_format(row[c]) for c in columns])
    return buffer.getvalue()


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


def read_rows(path: Path) -> list[dict[str, float]]:
    """Rows of a results CSV, numbers parsed (`id` as int)."""
    with open(path, newline="") as handle:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _parse(text: str) -> int | float | str:
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text  # a name column (`<column>_name`, `broken_by`)


def is_class_column(column: str) -> bool:
    """Whether a column holds class indices: `label` and every scorer's `pred_*` (with any
    prefix, e.g. `heldout_pred_attacked`, `sensor0_pred_attacked`)."""
    return column == "label" or "pred_" in column


def with_class_names(
    rows: Sequence[Mapping[str, Any]], names: Sequence[str] | None
) -> list[dict[str, Any]]:
    """Rows with a `<column>_name` beside every class-index column: what the index means to
    the downstream model (`names[index]`; empty where the index is missing or out of range).
    Without names the rows come back as they are."""
    if not names or not rows:
        return [dict(row) for row in rows]

    def name(value: Any) -> str:
        index = int(value) if isinstance(value, int | float) and value == value else -1
        return names[index] if 0 <= index < len(names) else ""

    out = []
    for row in rows:
        named: dict[str, Any] = {}
        for column, value in row.items():
            named[column] = value
            if is_class_column(column):
                named[f"{column}_name"] = name(value)
        out.append(named)
    return out


def columns_to_rows(ids: torch.Tensor, columns: Mapping[str, torch.Tensor]) -> list[dict]:
    """Per-batch column tensors (or lists of text, e.g. `broken_by`) → one dict per image,
    `id` first."""
    host = {
        name: values.detach().cpu().tolist() if isinstance(values, torch.Tensor) else list(values)
        for name, values in columns.items()
    }
    return [
        {"id": int(i), **{name: _plain(values[k]) for name, values in host.items()}}
        for k, i in enumerate(ids.tolist())
    ]


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, float) else value


class ResultsWriter(BasePredictionWriter):
    """Writes each predicted batch's rows as soon as the batch ends.

    `class_names` (the downstream model's, index order): `samples.csv` gets a `<column>_name`
    beside every class-index column, so a reader sees 'tabby' where the row says 281. The
    per-batch parts stay numbers only (what resuming reads)."""

    def __init__(self, output_dir: str | Path, class_names: Sequence[str] | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.parts_dir = self.output_dir / PARTS_DIR
        self.class_names = list(class_names) if class_names is not None else None

    def done_ids(self) -> set[int]:
        """Ids whose rows are already on disk (from any rank, any earlier run)."""
        if not self.parts_dir.is_dir():
            return set()
        return {
            row["id"] for part in sorted(self.parts_dir.glob("*.csv")) for row in read_rows(part)
        }

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Mapping[str, Any],
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        rows = columns_to_rows(prediction["id"], prediction["columns"])
        if not rows:
            return
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        name = f"rank{trainer.global_rank}-{rows[0]['id']:08d}.csv"
        atomic_write_text(self.parts_dir / name, rows_to_csv(rows))

    def merge(self, extra: Mapping[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
        """Merge every part into `samples.csv`, write `summary.json`, return the summary.

        `seed` (the config seed) seeds the bootstrap of the summary's intervals.
        """
        rows = [row for part in sorted(self.parts_dir.glob("*.csv")) for row in read_rows(part)]
        ids = [row["id"] for row in rows]
        if len(ids) != len(set(ids)):
            dupes = sorted({i for i in ids if ids.count(i) > 1})[:10]
            raise RuntimeError(f"{self.parts_dir}: duplicated result rows for ids {dupes}")
        rows.sort(key=lambda row: row["id"])
        if rows:
            named = with_class_names(rows, self.class_names)
            atomic_write_text(self.output_dir / SAMPLES_FILE, rows_to_csv(named))
        summary = {**summarize(rows, seed), **(extra or {})}
        atomic_write_text(self.output_dir / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
        return summary
