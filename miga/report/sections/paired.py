"""Attack against attack on the same images: paired differences with a paired bootstrap.

Two cells that differ only in their attack scored the same images (same ids, same noise), so
the difference between their rates is a per-image difference, and its interval a paired
bootstrap over images (miga.metrics.intervals.paired_bootstrap_diff) — much narrower than two
independent intervals side by side. One table row per (context, other attack): MIGA minus that
attack, over the images where both are defined (`success` is NaN where the image was already
misclassified on D(x_n)). The bootstrap seed is the cells' config seed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

from miga.callbacks.results_writer import SAMPLES_FILE, read_rows
from miga.metrics.intervals import paired_bootstrap_diff
from miga.report.cells import Cell, varying_keys
from miga.report.format import MISSING, label, markdown_table, signed

ORDER = 50

#: The attack every other one is compared with.
REFERENCE = "miga"
#: column of samples.csv → what the table calls MIGA minus the other attack on it.
COLUMNS = {
    "success": "Δ success",
    "stealth_success": "Δ stealth success",
    "psnr_attacked": "Δ PSNR(D(x_n+δ), x) dB",
}


def _context(cell: Cell) -> tuple[tuple[str, str], ...]:
    """Everything the cell was run with except its attack (choices and overrides)."""
    return tuple(sorted((k, v) for k, v in cell.settings.items() if k != "attack"))


def _seed(cell: Cell) -> int:
    config = cell.path / ".hydra" / "config.yaml"
    if not config.is_file():
        return 0
    return int(OmegaConf.select(OmegaConf.load(config), "seed", default=0) or 0)


def paired_difference(
    ours: Sequence[dict], theirs: Sequence[dict], column: str, seed: int
) -> tuple[int, float, tuple[float, float]] | None:
    """(pairs, mean of ours − theirs, 95 % paired interval) over ids where both are finite."""
    by_id = {row["id"]: row for row in theirs if column in row}
    pairs = [
        (float(row[column]), float(by_id[row["id"]][column]))
        for row in ours
        if column in row and row["id"] in by_id
    ]
    pairs = [(a, b) for a, b in pairs if a == a and b == b]  # NaN ≠ NaN: drop undefined
    if not pairs:
        return None
    a, b = zip(*pairs, strict=True)
    return len(pairs), sum(a) / len(a) - sum(b) / len(b), paired_bootstrap_diff(a, b, seed)


def difference(pairs: int, mean: float, interval: tuple[float, float]) -> str:
    """`+0.25 [-0.25, +0.75] (n=4)`: a paired difference, its interval and its image count."""
    return f"{signed(mean)} [{signed(interval[0])}, {signed(interval[1])}] (n={pairs})"


def paired_rows(cells: Sequence[Cell]) -> list[list[str]]:
    """The table's rows: per context holding MIGA, each other attack against it; a context is
    labelled by what varies between the contexts (nothing: "—")."""
    groups: dict[tuple, dict[str, Cell]] = defaultdict(dict)
    for cell in cells:
        if cell.finished and (cell.path / SAMPLES_FILE).is_file():
            groups[_context(cell)][cell.choices.get("attack", "?")] = cell
    groups = {c: g for c, g in groups.items() if REFERENCE in g and len(g) > 1}
    varying = set(varying_keys([dict(c) for c in groups]))
    rows = []
    for context, by_attack in sorted(groups.items()):
        reference = by_attack[REFERENCE]
        ours, seed = read_rows(reference.path / SAMPLES_FILE), _seed(reference)
        for attack, cell in sorted(by_attack.items()):
            if attack == REFERENCE:
                continue
            theirs = read_rows(cell.path / SAMPLES_FILE)
            line = [label([(k, v) for k, v in context if k in varying]) or MISSING, attack]
            for column in COLUMNS:
                found = paired_difference(ours, theirs, column, seed)
                line.append(MISSING if found is None else difference(*found))
            rows.append(line)
    return rows


def sections(cells: Sequence[Cell], out: Path | None = None) -> list[str]:
    """The report.md section (empty when no context holds MIGA and another attack); it draws
    nothing, so `out` is unused."""
    rows = paired_rows(cells)
    if not rows:
        return []
    header = ["cell", f"{REFERENCE} − attack", *COLUMNS.values()]
    return [
        f"## {REFERENCE} against each attack on the same images (paired bootstrap, 95 %)\n\n"
        "An interval that excludes 0 is a difference on these images; one that includes it "
        "is not.\n\n" + markdown_table(header, rows) + "\n"
    ]
