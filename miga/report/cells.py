"""Finding and expanding cells: the finished cell folders under a sweep, what tells them apart,
and the cells its `multirun.yaml` defines.

A cell is keyed by every setting that varies across the cells (`varying_keys`: config-group
choices and plain overrides alike, read from each cell's own saved overrides). Settings that
cannot change a number (`NEUTRAL`: where files go, how a run is logged or shown) key nothing:
two cells that differ only in them are one cell run twice, and the report stops with
`SlotCollision` naming both folders rather than keep one silently (their numbers need not be
equal: a re-run on another machine or thread count differs in the last digits, and the report
cannot know which one the reader meant).
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob
from omegaconf import DictConfig, OmegaConf

from miga.callbacks.results_writer import PARTS_DIR, SUMMARY_FILE, read_rows
from miga.report.format import label
from miga.utils.results_dir import PROVENANCE_FILE

#: The paper tables' rows and columns.
ROW_KEY, COLUMN_KEY = "denoiser", "dataset"
#: The order in which varying settings are named in titles and labels (others follow, sorted).
#: Only an order: which settings key a cell is decided by what varies (`varying_keys`).
FACTORS = ("attack", "mi_estimator", "defense", "noise", "downstream")
#: The transfer sweeps' surrogate choices (miga.report.sections.transfer draws their matrices).
OPTIONAL_FACTORS = ("denoiser@surrogate.denoiser", "downstream@surrogate.downstream")
#: A setting a cell does not record (a plain key another cell overrides): it ran the default.
DEFAULT = "(default)"
#: Plain (non-group) keys sweeps vary; read from each cell's saved config when not overridden.
EPSILON, STEPS = "budget.epsilon", "attack.steps"
#: The sensor threat model's EOT draws per step (miga.report.sections.sensor), read likewise.
ATTACK_DRAWS = "sensor.attack_draws"
#: Settings that cannot change a cell's numbers, with everything under them (`paths` covers
#: `paths.data`, `hydra` covers `hydra/launcher`): where files are read and written, how the run
#: is logged, named, resumed or shown. They never key a cell, split a table or join a label;
#: cells.csv still records them. Not here, because they do move numbers: `threads` (reduction
#: order), `speed.*` and `trainer.precision` (float rounding), `loader.batch_size`, `seed`.
NEUTRAL = (
    "logger",
    "resume",
    "sweep",
    "name",
    "paths",
    "hydra",
    "loader.num_workers",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
)


def is_neutral(key: str) -> bool:
    """Whether `key` is in NEUTRAL or under one of its entries (`.` or `/` below it)."""
    return any(key == n or key.startswith((n + ".", n + "/")) for n in NEUTRAL)


class SlotCollision(ValueError):
    """Two cells claim one slot of a table: the report would have to drop one of them."""


@dataclass
class Cell:
    """One cell folder: its config-group choices, its command-line values and, if finished, its
    summary. The report's unit, and the only thing its sections read."""

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
    def recorded(self) -> dict[str, str]:
        """Everything the cell was run with that the report can read: its plain overrides and
        epsilon/steps (`params`) and its config-group choices (which win: they are the choice
        Hydra resolved, where an override may be `~group` or `+group=…`)."""
        return {**self.params, **self.choices}

    @property
    def settings(self) -> dict[str, str]:
        """`recorded` less the NEUTRAL keys: the settings that can change the cell's numbers,
        and so the ones that key it."""
        return {k: v for k, v in self.recorded.items() if not is_neutral(k)}

    def setting(self, key: str) -> str:
        return self.settings.get(key, DEFAULT)


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


def recorded_keys(cells: Sequence[Cell]) -> list[str]:
    """Every setting any cell records, NEUTRAL ones included, varying ones first: the columns
    of cells.csv and of the W&B cells table."""
    varying = sweep_keys(cells)
    rest = sorted({k for c in cells for k in c.recorded} - set(varying))
    return [*varying, *rest]


#: A curve or a table row of cells: the attack and the other settings that define it.
Line = tuple[tuple[str, str], ...]


def line_labels(lines: Sequence[Line]) -> dict[Line, str]:
    """Each line's legend: its attack, then the settings that differ between the lines."""
    differ = [k for k in varying_keys([dict(line) for line in lines]) if k != "attack"]
    labels = {}
    for line in lines:
        values = dict(line)
        extra = ", ".join(f"{k}={values.get(k, DEFAULT)}" for k in differ)
        labels[line] = f"{values['attack']} ({extra})" if extra else values["attack"]
    return labels


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
                "do not tell them apart (settings that cannot change a number, "
                "miga.report.cells.NEUTRAL, do not count); remove one folder, or report them "
                "separately."
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
    return [read_cell(folder) for folder in sorted(folders)]


def read_cell(folder: Path) -> Cell:
    """The cell in `folder`: provenance.json's choices, summary.json if finished, rows written."""
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
    """The cells a sweep defines: the product of its `hydra.sweeper.params` (multirun.yaml),
    NEUTRAL keys left out (a sweep over `logger=…` runs one cell twice)."""
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
            keys = [k for k in params if not is_neutral(k.lstrip("+~"))]
            values = [sweep_values(k, str(params[k]), record) for k in keys]
            for combo in itertools.product(*values):
                if (cell := dict(zip(keys, combo))) not in grid:
                    grid.append(cell)
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
    given = [c.recorded for c in cells]
    return [
        combo
        for combo in expected
        if not any(all(g.get(k) == v for k, v in combo.items()) for g in given)
    ]
