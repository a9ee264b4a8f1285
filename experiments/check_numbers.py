"""`python -m experiments.check_numbers [--all]`: regenerate the documented numbers and compare.

Every number README.md and experiments/README.md state that a CPU reproduces is listed in
`experiments/numbers.yaml` with the cell that produces it (the exact `python -m miga.run`
overrides, thread count included), the `summary.json` key or `samples.csv` column reduction it
is, and the text the document prints it in. This script

1. checks that each document still contains that text, whitespace-normalised, with the stated
   figure inside it (so prose and manifest cannot drift apart silently);
2. runs each distinct cell once (numbers share cells), into `--workdir`, from scratch
   (`resume=false`; `--reuse` reads cells already there instead, to iterate on the manifest);
3. compares each measured value with the stated one to the stated figure's printed precision
   ("28.05" holds for measured values in [28.045, 28.055]) and prints a table;

and exits 1 when any text is missing, any cell fails, or any number differs. Cells marked
`slow: true` (sweeps of minutes each) run only with `--all`. `make check-numbers` runs it;
`make check-numbers ARGS=--all` includes the slow ones.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "experiments" / "numbers.yaml"
REDUCTIONS = {"mean": np.nanmean, "sum": np.nansum, "max": np.nanmax, "min": np.nanmin}


@dataclass
class Number:
    """One stated figure: where it is printed and how a cell's results give it."""

    name: str
    file: str
    text: str
    stated: str
    cell: str
    key: str | None = None
    index: int | None = None
    column: str | None = None
    reduce: str | None = None
    scale: float = 1.0


def _fail(path: Path, where: str, expected: str) -> ValueError:
    return ValueError(f"{path}: {where}: expected {expected}")


def load_manifest(path: Path) -> tuple[dict[str, dict[str, Any]], list[Number]]:
    """Cells (name → {overrides, slow}) and numbers, validated with errors naming the key."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot read the numbers manifest: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("cells"), dict):
        raise _fail(path, "cells", "a mapping of cell name → {overrides: [...], slow: bool}")
    if not isinstance(data.get("numbers"), list):
        raise _fail(path, "numbers", "a list of numbers")
    cells = {}
    for name, cell in data["cells"].items():
        overrides = (cell or {}).get("overrides")
        if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
            raise _fail(path, f"cells.{name}.overrides", "a list of miga.run overrides")
        if not any(o.startswith("threads=") for o in overrides):
            raise _fail(
                path, f"cells.{name}.overrides", "an explicit threads=<n> (it moves numbers)"
            )
        cells[name] = {"overrides": overrides, "slow": bool(cell.get("slow", False))}
    numbers = []
    fields = set(Number.__dataclass_fields__)
    for i, entry in enumerate(data["numbers"]):
        where = f"numbers[{i}]"
        if not isinstance(entry, dict) or not {"name", "file", "text", "stated", "cell"} <= set(
            entry
        ):
            raise _fail(path, where, "a mapping with name, file, text, stated, cell")
        if unknown := set(entry) - fields:
            raise _fail(
                path,
                f"{where} ({entry['name']})",
                f"only keys {sorted(fields)}, got {sorted(unknown)}",
            )
        number = Number(**{**entry, "stated": str(entry["stated"])})
        if number.cell not in cells:
            raise _fail(
                path, f"{where}.cell", f"one of the cells {sorted(cells)}, got {number.cell!r}"
            )
        if (number.key is None) == (number.column is None):
            raise _fail(path, f"{where} ({number.name})", "exactly one of key or column")
        if number.column is not None and number.reduce not in REDUCTIONS:
            raise _fail(path, f"{where}.reduce", f"one of {sorted(REDUCTIONS)}")
        if not re.fullmatch(r"-?\d+(\.\d+)?", number.stated):
            raise _fail(
                path, f"{where}.stated", f"a decimal figure as printed, got {number.stated!r}"
            )
        numbers.append(number)
    return cells, numbers


def normalise(text: str) -> str:
    return " ".join(text.split())


def text_problem(number: Number, root: Path) -> str | None:
    """Why the document no longer prints this number as the manifest says, or None."""
    if number.stated not in number.text:
        return f"manifest text does not contain the stated {number.stated}"
    try:
        document = normalise((root / number.file).read_text())
    except OSError as err:
        return f"cannot read {number.file}: {err}"
    if normalise(number.text) not in document:
        return f"{number.file} no longer contains: {normalise(number.text)!r}"
    return None


def run_cell(name: str, overrides: list[str], workdir: Path, reuse: bool) -> Path:
    """Run one cell from scratch (or reuse a finished one) and return its folder."""
    out = workdir / name
    if reuse and (out / "summary.json").is_file():
        return out
    command = [sys.executable, "-m", "miga.run", f"hydra.run.dir={out}", "resume=false",
               "logger=none", *overrides]  # fmt: skip
    print(f"[check_numbers] cell {name}: python -m miga.run {' '.join(overrides)}", flush=True)
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"cell {name} failed (exit {done.returncode}): {' | '.join(tail)}")
    return out


def measure(number: Number, cell_dir: Path) -> float:
    """The number as the cell's results give it: a summary key (an interval's end with
    `index`) or a reduction of one samples.csv column, times `scale`."""
    if number.key is not None:
        summary = json.loads((cell_dir / "summary.json").read_text())
        if number.key not in summary:
            raise KeyError(f"{cell_dir / 'summary.json'} has no key {number.key!r}")
        value = summary[number.key]
        if number.index is not None:
            value = value[number.index]
    else:
        import csv

        with (cell_dir / "samples.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        if not rows or number.column not in rows[0]:
            raise KeyError(f"{cell_dir / 'samples.csv'} has no column {number.column!r}")
        column = np.array([float(row[number.column]) for row in rows])
        value = float(REDUCTIONS[number.reduce](column))
    return float(value) * number.scale


def matches(stated: str, measured: float) -> bool:
    """Does `measured`, printed at the stated figure's precision, read as the stated figure?
    (half a unit of the last printed digit either way, plus float slack)"""
    decimals = len(stated.split(".")[1]) if "." in stated else 0
    half_unit = 0.5 * 10.0**-decimals
    return math.isfinite(measured) and abs(measured - float(stated)) <= half_unit + 1e-9


def check(manifest: Path, workdir: Path, root: Path, run_all: bool, reuse: bool) -> int:
    cells, numbers = load_manifest(manifest)
    chosen = [n for n in numbers if run_all or not cells[n.cell]["slow"]]
    skipped = len(numbers) - len(chosen)
    rows: list[tuple[str, str, str, str]] = []
    failures = 0
    results: dict[str, Path | str] = {}
    for number in chosen:
        problem = text_problem(number, root)
        if problem is None and number.cell not in results:
            try:
                results[number.cell] = run_cell(
                    number.cell, cells[number.cell]["overrides"], workdir, reuse
                )
            except RuntimeError as err:
                results[number.cell] = str(err)
        if problem is None and isinstance(results[number.cell], str):
            problem = results[number.cell]
        if problem is not None:
            failures += 1
            rows.append((number.name, number.stated, "-", f"FAIL: {problem}"))
            continue
        try:
            measured = measure(number, results[number.cell])
        except (KeyError, OSError, IndexError, TypeError, ValueError) as err:
            failures += 1
            rows.append((number.name, number.stated, "-", f"FAIL: {err}"))
            continue
        ok = matches(number.stated, measured)
        failures += not ok
        rows.append((number.name, number.stated, f"{measured:.6g}", "ok" if ok else "MISMATCH"))
    width = max([len(r[0]) for r in rows] + [6])
    print(f"\n{'number':<{width}}  {'stated':>8}  {'measured':>10}  result")
    for name, stated, measured, result in rows:
        print(f"{name:<{width}}  {stated:>8}  {measured:>10}  {result}")
    print(
        f"\n{len(rows) - failures}/{len(rows)} numbers match"
        + (f"; {skipped} slow ones not run (--all runs them)" if skipped else "")
    )
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--workdir", type=Path, default=REPO / "outputs" / "check_numbers")
    parser.add_argument("--root", type=Path, default=REPO, help="where the manifest's files are")
    parser.add_argument("--all", action="store_true", help="also the cells marked slow")
    parser.add_argument("--reuse", action="store_true", help="read finished cells in --workdir")
    args = parser.parse_args(argv)
    try:
        return check(args.manifest, args.workdir, args.root, args.all, args.reuse)
    except ValueError as err:
        print(f"check_numbers: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
