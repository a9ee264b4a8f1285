"""`report.html`: the sweep's report as one self-contained file (images inlined, no network).

Air-gapped clusters cannot `wandb sync`; this page shows the same numbers (read from the same
`summary.json` files the W&B summaries are written from) and opens from disk in any browser.
It is rendered with the Jinja2 template `templates/report.html.j2` beside this module; the images
are the PNGs the sections drew (heat-maps, curves) and the image-grid callback saved in each cell.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from miga.metrics.summary import CI_SUFFIX
from miga.report.cells import (
    COLUMN_KEY,
    ROW_KEY,
    Cell,
    constants,
    section_title,
    sections,
    sweep_keys,
)
from miga.report.figures import METRIC_SPECS
from miga.report.format import label, with_interval
from miga.report.sections import robustness
from miga.report.sections.tables import METRICS, filled_tables, heatmap_path
from miga.utils.results_dir import PROVENANCE_FILE

#: The paper's effect, on the first screen: accuracy on D(x_n) vs D(x_n+δ), success, fidelity.
HEADLINE = ("acc_denoised", "acc_attacked", "success_rate", "psnr_attacked")
GRIDS_DIR = "grids"
#: Provenance fields shown above the full record (the rest is one click away).
PROVENANCE_KEYS = ("config_hash", "git_commit", "results_format", "python")


def data_uri(path: Path) -> str:
    """A PNG as a `data:` URI, so the page needs no file next to it."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _provenance(cell: Cell) -> dict:
    path = cell.path / PROVENANCE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def varying(cells: Sequence[Cell]) -> list[str]:
    """The settings that tell these cells apart (denoiser and dataset always): row labels."""
    return [ROW_KEY, COLUMN_KEY, *[k for k in sweep_keys(cells) if k not in (ROW_KEY, COLUMN_KEY)]]


def _cell_view(cell: Cell, short: Sequence[str]) -> dict:
    provenance = _provenance(cell)
    grids_dir = cell.path / GRIDS_DIR
    grids = sorted(grids_dir.glob("*.png")) if grids_dir.is_dir() else []
    summary = cell.summary or {}
    return {
        "path": str(cell.path),
        "label": label(dict(sorted(cell.choices.items()))),
        "short": label({k: cell.setting(k) for k in short}),
        "finished": cell.finished,
        "rows_done": cell.rows_done,
        "headline": {
            m: with_interval(summary.get(m), summary.get(m + CI_SUFFIX)) for m in HEADLINE
        },
        "summary": json.dumps(summary, indent=2),
        "key_provenance": {k: provenance.get(k, "—") for k in PROVENANCE_KEYS},
        "versions": provenance.get("versions", {}),
        "provenance": json.dumps(provenance, indent=2, sort_keys=True, default=str),
        "grids": [{"name": g.stem, "src": data_uri(g)} for g in grids],
    }


def _sections(cells: Sequence[Cell], out: Path) -> list[dict]:
    """One section per combination of the other varying settings: its tables, as in report.md."""
    views = []
    for key, group in sections(cells):
        tables = []
        for metric, rows, columns, values, cis in filled_tables(group):
            name, direction, _ = METRIC_SPECS.get(metric, (metric, "", None))
            heat = heatmap_path(out, metric, key)
            tables.append(
                {
                    "metric": metric,
                    "name": name,
                    "direction": direction,
                    "columns": columns,
                    "body": [
                        [r, *[with_interval(values.get((r, c)), cis.get((r, c))) for c in columns]]
                        for r in rows
                    ],
                    "heatmap": data_uri(heat) if heat.is_file() else None,
                }
            )
        views.append({"label": section_title(key), "tables": tables})
    return views


def _robustness(cells: Sequence[Cell]) -> dict | None:
    """The worst-case robustness tables, as in report.md (None: no ensemble-scored cell)."""
    table = robustness.robustness(cells)
    if table is None:
        return None
    return {
        "intro": robustness.INTRO.format(top=robustness.epsilon_label(table.sort_epsilon)),
        "main": robustness.main_table(table),
        "detail": robustness.detail_table(table),
        "notes": robustness.masked_notes(table),
    }


def write_html(cells: Sequence[Cell], missing: Sequence[dict], out: Path) -> Path:
    """`out/report.html` from the cells and the PNGs already under `out`; returns its path.

    Every PNG in `out` that is not a heat-map (strength curves, trade-offs) is shown under
    "Curves", so a new plot in the report folder appears on the page without template edits.
    """
    heatmap_prefixes = tuple(f"{m}__" for m in METRICS)
    curves = [
        {"name": p.stem, "src": data_uri(p)}
        for p in sorted(out.glob("*.png"))
        if not p.name.startswith(heatmap_prefixes)
    ]
    short = varying(cells)
    views = [_cell_view(c, short) for c in cells]
    example = next((v for v in views if v["finished"] and v["grids"]), None)
    env = Environment(
        loader=PackageLoader("miga.report", "templates"),
        autoescape=select_autoescape(),
        undefined=StrictUndefined,  # a template typo is an error, not an empty cell
    )
    page = env.get_template("report.html.j2").render(
        headline=[(m, METRIC_SPECS[m][0], METRIC_SPECS[m][1]) for m in HEADLINE],
        cells=views,
        example=example,
        finished=sum(c.finished for c in cells),
        varying=", ".join(sweep_keys(cells)) or "—",
        constants=label(constants(cells)) or "—",
        failed=[v for v in views if not v["finished"]],
        missing=[label(m) for m in missing],
        sections=_sections(cells, out),
        robustness=_robustness(cells),
        curves=curves,
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
