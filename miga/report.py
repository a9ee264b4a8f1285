"""`python -m miga.report <sweep dir | results glob> [--out DIR] [--wandb]`: the paper's tables.

Reads every cell folder (one with `provenance.json`) under the given directories, and writes,
per metric, a table laid out like the paper (rows: denoisers, columns: datasets) as Markdown and
CSV, a heat-map PNG, and `cells.csv` with one line per cell. A cell is keyed by every setting
that varies across the cells (`varying_keys`: config-group choices and plain overrides alike,
read from each cell's own saved overrides), and there is one table per combination of the
varying settings other than denoiser and dataset (e.g. `budget=l2, noise.sigma=15`), so every
cell has exactly one slot; the settings every cell shares are printed once in the header. Two
cell folders with the same settings would claim one slot: that is an error naming both
(`SlotCollision`), never a silent overwrite. Cells that started but have no `summary.json` are
listed as failed/incomplete; cells that the sweep defines (its `multirun.yaml`) but that never
started are listed as missing.
"""

from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import itertools
import json
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob
from omegaconf import DictConfig, OmegaConf

from miga.callbacks.results_writer import PARTS_DIR, SUMMARY_FILE, read_rows
from miga.metrics.summary import CI_SUFFIX
from miga.utils.results_dir import PROVENANCE_FILE

ROW_KEY, COLUMN_KEY = "denoiser", "dataset"
METRICS = (
    "acc_denoised",
    "acc_attacked",
    "success_rate",
    "stealth_success_rate",
    "sensor_success_rate",
    "psnr_denoised",
    "psnr_attacked",
    "ssim_attacked",
    "linf_max",
    "l2_mean",
)
#: The order in which varying settings are named in titles and labels (others follow, sorted).
#: Only an order: which settings key a cell is decided by what varies (`varying_keys`).
FACTORS = ("attack", "mi_estimator", "defense", "noise", "downstream")
#: The transfer sweeps' surrogate choices (miga.report_transfer draws their matrices).
OPTIONAL_FACTORS = ("denoiser@surrogate.denoiser", "downstream@surrogate.downstream")
#: A setting a cell does not record (a plain key another cell overrides): it ran the default.
DEFAULT = "(default)"
#: Plain (non-group) keys sweeps vary; read from each cell's saved config when not overridden.
EPSILON, STEPS = "budget.epsilon", "attack.steps"
#: The sensor threat model's EOT draws per step (miga.report_sensor), read like EPSILON/STEPS.
ATTACK_DRAWS = "sensor.attack_draws"


@dataclass
class Cell:
    """One cell folder: its config-group choices and, if finished, its summary."""

    path: Path
    choices: dict[str, str]
    summary: dict[str, float] | None
    rows_done: int
    #: its command-line values, plain keys included (`cell_params`), read once with the cell
    params: dict[str, str] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.summary is not None

    @property
    def settings(self) -> dict[str, str]:
        """Everything the cell was run with that the report can read: its plain overrides and
        epsilon/steps (`params`) and its config-group choices (which win: they are the choice
        Hydra resolved, where an override may be `~group` or `+group=…`)."""
        return {**self.params, **self.choices}

    def setting(self, key: str) -> str:
        return self.settings.get(key, DEFAULT)


class SlotCollision(ValueError):
    """Two cells claim one slot of a table: the report would have to drop one of them."""


def _order(key: str) -> tuple[int, str]:
    named = (ROW_KEY, COLUMN_KEY, *FACTORS, *OPTIONAL_FACTORS)
    return (named.index(key) if key in named else len(named), key)


def varying_keys(settings: Sequence[Mapping[str, str]]) -> list[str]:
    """The keys whose value differs between these settings (a key some lack counts as
    `DEFAULT` there): what tells the cells of a sweep apart. Every table, curve and label of
    the report keys cells by these, so a sweep over any group or plain key (`budget`,
    `noise.sigma`) gets one slot per cell. Ordered like FACTORS, then alphabetically."""
    keys = {k for s in settings for k in s}
    return sorted((k for k in keys if len({s.get(k, DEFAULT) for s in settings}) > 1), key=_order)


def sweep_keys(cells: Sequence[Cell]) -> list[str]:
    """`varying_keys` of the cells' settings: the sweep's axes, read from the cells themselves."""
    return varying_keys([c.settings for c in cells])


def constants(cells: Sequence[Cell]) -> dict[str, str]:
    """The settings every cell shares (the sweep's constants, printed once in the header);
    optional groups no cell sets (`None`: no surrogate, no experiment preset) are left out."""
    varying = set(sweep_keys(cells))
    shared = {k for c in cells for k in c.settings} - varying
    values = {k: cells[0].setting(k) for k in sorted(shared, key=_order)}
    return {k: v for k, v in values.items() if v != "None"}


def key_of(cell: Cell, keys: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """The cell's (key, value) pairs for `keys`, in that order."""
    return tuple((k, cell.setting(k)) for k in keys)


def place(cells: Iterable[Cell], slot: Callable[[Cell], Hashable], what: str) -> dict:
    """slot(cell) → cell, for a table or matrix; two cells with one slot raise SlotCollision
    naming both folders (one would silently replace the other)."""
    placed: dict = {}
    for cell in cells:
        key = slot(cell)
        if key in placed:
            raise SlotCollision(
                f"two cells claim one slot {key!r} of {what}: {placed[key].path} and "
                f"{cell.path}. Their saved overrides (.hydra/overrides.yaml, provenance.json) "
                "do not tell them apart; remove one folder, or report them separately."
            )
        placed[key] = cell
    return placed


def check_unique(cells: Sequence[Cell]) -> None:
    """Every cell has its own settings (else two would claim one slot of every table)."""
    keys = sweep_keys(cells)
    place(cells, lambda c: label(key_of(c, keys)) or "(no varying setting)", "the sweep")


def sections(cells: Sequence[Cell]) -> list[tuple[tuple[tuple[str, str], ...], list[Cell]]]:
    """(section key, its cells): one section per combination of the varying settings other
    than the tables' rows and columns, in a stable order."""
    keys = [k for k in sweep_keys(cells) if k not in (ROW_KEY, COLUMN_KEY)]
    grouped: dict[tuple[tuple[str, str], ...], list[Cell]] = {}
    for cell in cells:
        grouped.setdefault(key_of(cell, keys), []).append(cell)
    return sorted(grouped.items())


def section_title(key: Sequence[tuple[str, str]]) -> str:
    return label(key) or "All cells"


def slug(key: Sequence[tuple[str, str]]) -> str:
    """A file-name part for a section: `k=v,k=v` (Hydra's folder style), `all` when nothing
    else varies; long ones are shortened with a hash so they stay valid file names."""
    text = ",".join(f"{k}={v}" for k, v in key).replace("/", "-") or "all"
    if len(text) > 120:
        text = text[:100] + "-" + hashlib.sha1(text.encode()).hexdigest()[:10]
    return text


def find_cells(sources: Iterable[str]) -> list[Cell]:
    """Every cell folder under the given directories or globs, sorted by path."""
    folders: set[Path] = set()
    for source in sources:
        for match in glob.glob(source) or [source]:
            root = Path(match)
            if (root / PROVENANCE_FILE).is_file():
                folders.add(root)
            folders.update(p.parent for p in root.rglob(PROVENANCE_FILE))
    return [_read_cell(folder) for folder in sorted(folders)]


def _read_cell(folder: Path) -> Cell:
    record = json.loads((folder / PROVENANCE_FILE).read_text())
    summary_path = folder / SUMMARY_FILE
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    parts = list((folder / PARTS_DIR).glob("*.csv")) if (folder / PARTS_DIR).is_dir() else []
    rows = sum(len(read_rows(part)) for part in parts)
    return Cell(folder, record.get("choices", {}), summary, rows, cell_params(folder))


def cell_params(path: Path) -> dict[str, str]:
    """The cell's command-line overrides, plus its epsilon and steps (from its saved config)."""
    params: dict[str, str] = {}
    overrides = path / ".hydra" / "overrides.yaml"
    if overrides.is_file():
        for item in OmegaConf.load(overrides) or []:
            key, _, value = str(item).partition("=")
            params[key.lstrip("+~")] = value
    config = path / ".hydra" / "config.yaml"
    if config.is_file():
        loaded = OmegaConf.load(config)
        for key in (EPSILON, STEPS, ATTACK_DRAWS):
            value = OmegaConf.select(loaded, key, default=None, throw_on_resolution_failure=False)
            if key not in params and value is not None:
                params[key] = str(value)
    return params


def expected_grid(sources: Iterable[str]) -> list[dict[str, str]]:
    """The cells a sweep defines: the product of its `hydra.sweeper.params` (multirun.yaml)."""
    grid: list[dict[str, str]] = []
    for source in sources:
        for match in glob.glob(source) or [source]:
            path = Path(match) / "multirun.yaml"
            if not path.is_file():
                continue
            record = OmegaConf.load(path)
            params = dict(OmegaConf.select(record, "hydra.sweeper.params") or {})
            for item in OmegaConf.select(record, "hydra.overrides.task") or []:  # CLI lists win
                key, _, value = str(item).partition("=")
                if key in params or "," in value:
                    params[key] = value
            keys = list(params)
            values = [sweep_values(k, str(params[k]), record) for k in keys]
            grid += [dict(zip(keys, combo)) for combo in itertools.product(*values)]
    return grid


def sweep_values(key: str, value: str, record: DictConfig) -> list[str]:
    """The values one sweep parameter takes, read by Hydra's own override parser: `a,b`,
    `choice(…)`, `range(…)`, and `glob(…)` over the group's options in the sweep's config dir."""
    override = OverridesParser.create().parse_override(f"{key}={value}")
    if not override.is_sweep_override():
        return [value]
    sweep = override.value()
    if isinstance(sweep, Glob):
        return sweep.filter(group_options(key, record))
    return list(override.sweep_string_iterator())


def group_options(group: str, record: DictConfig) -> list[str]:
    """The options of config group `group` in the sweep's config sources (multirun.yaml's
    `hydra.runtime.config_sources`: the primary `pkg://miga.conf` and the user's own folders of
    `hydra.searchpath`; this package's conf/ when it does not say)."""
    roots = [
        source_root(source)
        for source in OmegaConf.select(record, "hydra.runtime.config_sources") or []
        if source.get("schema") in ("file", "pkg") and source.get("provider") != "hydra"
    ] or [resources.files("miga.conf")]
    return sorted(
        {p.name[: -len(".yaml")] for root in roots for p in options_in(root / group)}
    )


def source_root(source: DictConfig) -> Traversable:
    """A config source's folder: a path (`file://`) or a package's files (`pkg://`)."""
    if source.schema == "file":
        return Path(source.path)
    return resources.files(source.path.replace("/", "."))


def options_in(folder: Traversable) -> list[Traversable]:
    """The YAML files directly in `folder` (none when it does not exist)."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.is_file() and p.name.endswith(".yaml")]


def missing_cells(expected: Sequence[dict[str, str]], cells: Sequence[Cell]) -> list[dict]:
    """Expected combinations that no cell folder matches (by group choice or plain key)."""
    given = [{**c.params, **c.choices} for c in cells]
    return [
        combo
        for combo in expected
        if not any(all(g.get(k) == v for k, v in combo.items()) for g in given)
    ]


def label(choices: dict[str, str] | Iterable[tuple[str, str]]) -> str:
    """`k=v, k=v`: how the report names a cell or a group of cells."""
    pairs = choices.items() if isinstance(choices, dict) else choices
    return ", ".join(f"{k}={v}" for k, v in pairs)


def _slot(cell: Cell) -> tuple[str, str]:
    return cell.choices.get(ROW_KEY, "?"), cell.choices.get(COLUMN_KEY, "?")


def table(cells: Sequence[Cell], metric: str) -> tuple[list[str], list[str], dict]:
    """Rows (denoisers), columns (datasets) and values of `metric` over finished cells (of one
    section: two of them in one slot raise SlotCollision)."""
    rows = sorted({_slot(c)[0] for c in cells})
    columns = sorted({_slot(c)[1] for c in cells})
    placed = place((c for c in cells if c.finished), _slot, f"the {metric} table")
    values = {key: cell.summary.get(metric) for key, cell in placed.items()}
    return rows, columns, values


def intervals(cells: Sequence[Cell], metric: str) -> dict:
    """(row, column) → the cell's 95 % interval of `metric` (`<metric>_ci95`), where it has one."""
    return {
        _slot(c): ci
        for c in cells
        if c.finished and (ci := c.summary.get(metric + CI_SUFFIX)) is not None
    }


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"


def with_interval(value: float | None, ci: Sequence[float] | None) -> str:
    """`0.786 [0.524, 0.924]`: the value, and its interval where the summary has one."""
    if ci is None or value is None or any(math.isnan(v) for v in ci):
        return _fmt(value)
    return f"{_fmt(value)} [{_fmt(ci[0])}, {_fmt(ci[1])}]"


def markdown_table(metric: str, rows, columns, values, cis=None) -> str:  # noqa: ANN001
    cis = cis or {}
    lines = [f"| {metric} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row in rows:
        cells = [with_interval(values.get((row, c)), cis.get((row, c))) for c in columns]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# What each plot must say about its metric: a readable name with units, which way is better,
# and a fixed colour range for rates so that two heat-maps compare by eye.
METRIC_SPECS: dict[str, tuple[str, str, tuple[float, float] | None]] = {
    "acc_denoised": ("accuracy on D(x_n)", "higher is better for the defender", (0.0, 1.0)),
    "acc_attacked": ("accuracy on D(x_adv)", "lower = stronger attack", (0.0, 1.0)),
    "success_rate": ("attack success rate", "higher = stronger attack", (0.0, 1.0)),
    "stealth_success_rate": ("stealthy success rate", "higher = stronger attack", (0.0, 1.0)),
    "sensor_success_rate": (
        "success rate under fresh sensor noise (mean over draws)",
        "higher = stronger attack",
        (0.0, 1.0),
    ),
    "psnr_denoised": ("PSNR of D(x_n) [dB]", "higher is better", None),
    "psnr_attacked": ("PSNR of D(x_adv) [dB]", "higher = more stealthy", None),
    "ssim_attacked": ("SSIM of D(x_adv)", "higher = more stealthy", (0.0, 1.0)),
    "linf_max": ("max L-inf perturbation", "lower = smaller perturbation", None),
}


def colour_range(metric: str, finite: Sequence[float]) -> tuple[float, float]:
    """Fixed [0, 1] for rates; the data's range otherwise, widened only for a constant field."""
    spec = METRIC_SPECS.get(metric)
    if spec is not None and spec[2] is not None:
        return spec[2]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    if low == high:  # a constant field: one colour, a scale a tenth of the value wide, not ±0.1
        pad = abs(low) * 0.05 or 0.5
        return low - pad, high + pad
    return low, high


def heatmap(path: Path, title: str, rows, columns, values, metric: str = "") -> None:  # noqa: ANN001
    """One PNG per metric and factor: name, units and direction on the colour bar, title wrapped."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = [[values.get((r, c)) for c in columns] for r in rows]
    grid = [[float("nan") if v is None else v for v in line] for line in data]
    finite = [v for line in grid for v in line if not math.isnan(v)]
    vmin, vmax = colour_range(metric, finite)
    name, direction, _ = METRIC_SPECS.get(metric, (metric, "", None))
    fig, ax = plt.subplots(figsize=(3.2 + 1.3 * len(columns), 1.6 + 0.6 * len(rows)))
    image = ax.imshow(grid, cmap="viridis", aspect="auto", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(rows)), rows)
    for i, line in enumerate(data):
        for j, value in enumerate(line):
            ax.text(j, i, _fmt(value), ha="center", va="center", color="w", fontsize=9)
    ax.set_title("\n".join(textwrap.wrap(f"{name} — {title}", 48)), fontsize=9)
    bar = fig.colorbar(image, ax=ax)
    bar.set_label(f"{name}\n({direction})" if direction else name, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def write_report(cells: Sequence[Cell], missing: Sequence[dict], out: Path) -> Path:
    """Tables (md, csv), heat-maps and cells.csv under `out`; returns the report.md path.

    Raises SlotCollision (before writing anything) when two cells have the same settings."""
    check_unique(cells)
    out.mkdir(parents=True, exist_ok=True)
    parts = [
        f"# miga report\n\n{sum(c.finished for c in cells)} finished cells, "
        f"{sum(not c.finished for c in cells)} failed or incomplete, "
        f"{len(missing)} missing.\n",
        f"Varying across the cells: {', '.join(sweep_keys(cells)) or '—'}.\n",
        f"The same in every cell: {label(constants(cells)) or '—'}.\n",
    ]
    for key, group in sections(cells):
        title, name = section_title(key), slug(key)
        parts.append(f"## {title}\n")
        for metric in METRICS:
            rows, columns, values = table(group, metric)
            if not any(v is not None for v in values.values()):
                continue
            cis = intervals(group, metric)
            parts.append(markdown_table(metric, rows, columns, values, cis) + "\n")
            with open(out / f"{metric}__{name}.csv", "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow([metric, *columns])
                writer.writerows([[r, *[_fmt(values.get((r, c))) for c in columns]] for r in rows])
            heatmap(out / f"{metric}__{name}.png", title, rows, columns, values, metric=metric)
    problems = [
        f"- failed/incomplete: `{c.path}` ({c.rows_done} rows written)"
        for c in cells
        if not c.finished
    ]
    problems += [f"- missing: {label(m)}" for m in missing]
    from miga.report_transfer import transfer_sections  # surrogate × victim matrices

    parts += transfer_sections(cells, out)
    from miga.report_curves import curve_sections  # strength curves, step size, ablation

    parts += curve_sections(cells, out)
    from miga.report_sensor import sensor_sections  # success under noise the attack never saw

    parts += sensor_sections(cells, out)
    from miga.report_paired import paired_sections  # MIGA − each attack, paired over images

    parts += paired_sections(cells)
    if problems:
        parts.append("## Missing or failed cells\n\n" + "\n".join(problems) + "\n")
    _write_cells_csv(cells, out / "cells.csv")
    report = out / "report.md"
    report.write_text("\n".join(parts))
    from miga.report_html import write_html  # the same numbers as one self-contained page

    write_html(cells, missing, out)
    return report


def _setting_columns(cells: Sequence[Cell]) -> list[str]:
    """Every setting any cell records (choices and plain overrides), varying ones first."""
    varying = sweep_keys(cells)
    rest = sorted({k for c in cells for k in c.settings} - set(varying))
    return [*varying, *rest]


def _write_cells_csv(cells: Sequence[Cell], path: Path) -> None:
    keys = _setting_columns(cells)
    metrics = sorted({k for c in cells if c.finished for k in c.summary})
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "status", *keys, *metrics])
        for c in cells:
            status = "finished" if c.finished else "incomplete"
            summary = c.summary or {}
            writer.writerow(
                [
                    c.path,
                    status,
                    *[c.setting(k) for k in keys],
                    *[summary.get(m, "") for m in metrics],
                ]
            )


def log_to_wandb(cells: Sequence[Cell], report_dir: Path, mode: str) -> None:
    """One W&B run holding the cells table and the heat-maps (files under `report_dir`)."""
    import wandb

    from miga.utils.wandb_env import point_wandb_into

    point_wandb_into(report_dir)
    keys = _setting_columns(cells)
    metrics = sorted({k for c in cells if c.finished for k in c.summary})
    run = wandb.init(project="miga", job_type="report", mode=mode, dir=str(report_dir))
    data = [
        [*[c.setting(k) for k in keys], *[(c.summary or {}).get(m) for m in metrics]] for c in cells
    ]
    run.log({"cells": wandb.Table(columns=[*keys, *metrics], data=data)})
    run.log({p.stem: wandb.Image(str(p)) for p in sorted(report_dir.glob("*.png"))})
    run.finish()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m miga.report", description=__doc__)
    parser.add_argument("sources", nargs="+", help="sweep directories or globs of cell folders")
    parser.add_argument("--out", type=Path, help="report folder (default: <first source>/report)")
    parser.add_argument("--wandb", choices=["offline", "online"], help="also log to W&B")
    args = parser.parse_args(argv)
    cells = find_cells(args.sources)
    if not cells:
        parser.error(f"no cell folders (with {PROVENANCE_FILE}) under {args.sources}")
    missing = missing_cells(expected_grid(args.sources), cells)
    out = (
        args.out
        or Path(glob.glob(args.sources[0])[0] if glob.glob(args.sources[0]) else args.sources[0])
        / "report"
    )
    try:
        report = write_report(cells, missing, out)
    except SlotCollision as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    if args.wandb:
        log_to_wandb(cells, out, args.wandb)
    print(report.read_text())
    return 0 if all(c.finished for c in cells) and not missing else 1


if __name__ == "__main__":
    raise SystemExit(main())
