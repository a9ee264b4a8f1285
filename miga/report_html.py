"""`report.html`: the sweep's report as one self-contained file (images inlined, no network).

Air-gapped clusters cannot `wandb sync`; this page shows the same numbers (read from the same
`summary.json` files) and opens from disk in any browser. Rendered with a Jinja2 template shipped
in `miga/templates/`, the images are the PNGs `miga.report` and the image-grid callback saved.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Sequence
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from miga.report import METRIC_SPECS, METRICS, Cell, _fmt, table
from miga.utils.results_dir import PROVENANCE_FILE

# The paper's effect: accuracy on D(x_n) vs D(x_n+δ) and the attack's success rate.
HEADLINE = ("acc_denoised", "acc_attacked", "success_rate")
GRIDS_DIR = "grids"


def data_uri(path: Path) -> str:
    """A PNG as a `data:` URI, so the page needs no file next to it."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def value_with_ci(summary: dict, metric: str) -> str:
    """`0.790 [0.520, 0.920]` when `summary.json` carries `<metric>_ci95`, else the value."""
    text = _fmt(summary.get(metric))
    interval = summary.get(f"{metric}_ci95")
    if isinstance(interval, list | tuple) and len(interval) == 2:
        text += f" [{_fmt(interval[0])}, {_fmt(interval[1])}]"
    return text


def _cell_view(cell: Cell) -> dict:
    provenance = json.loads((cell.path / PROVENANCE_FILE).read_text())
    grids = sorted((cell.path / GRIDS_DIR).glob("*.png")) if (cell.path / GRIDS_DIR).is_dir() else []
    return {
        "path": str(cell.path),
        "label": ", ".join(f"{k}={v}" for k, v in sorted(cell.choices.items())),
        "finished": cell.finished,
        "rows_done": cell.rows_done,
        "headline": {m: value_with_ci(cell.summary or {}, m) for m in HEADLINE},
        "summary": cell.summary or {},
        "provenance": json.dumps(provenance, indent=2, sort_keys=True, default=str),
        "grids": [{"name": g.stem, "src": data_uri(g)} for g in grids],
    }


def write_html(cells: Sequence[Cell], missing: Sequence[dict], out: Path) -> Path:
    """`out/report.html` from the cells and the PNGs already under `out`; returns its path."""
    sections = []
    for factor, group in itertools.groupby(sorted(cells, key=Cell.factor), key=Cell.factor):
        group = list(group)
        slug = "_".join(v for _, v in factor).replace("/", "-")
        tables = []
        for metric in METRICS:
            rows, columns, values = table(group, metric)
            if not any(v is not None for v in values.values()):
                continue
            by_key = {
                (c.choices.get("denoiser", "?"), c.choices.get("dataset", "?")): c
                for c in group
                if c.finished
            }
            body = [
                [r, *[value_with_ci(by_key[(r, c)].summary, metric) if (r, c) in by_key else "—"
                      for c in columns]]
                for r in rows
            ]
            heat = out / f"{metric}__{slug}.png"
            tables.append(
                {
                    "metric": metric,
                    "name": METRIC_SPECS.get(metric, (metric, "", None))[0],
                    "direction": METRIC_SPECS.get(metric, (metric, "", None))[1],
                    "columns": columns,
                    "body": body,
                    "heatmap": data_uri(heat) if heat.is_file() else None,
                }
            )
        sections.append({"label": ", ".join(f"{k}={v}" for k, v in factor), "tables": tables})
    heatmap_files = {f"{m}__" for m in METRICS}
    curves = [
        {"name": p.stem, "src": data_uri(p)}
        for p in sorted(out.glob("*.png"))
        if not any(p.name.startswith(prefix) for prefix in heatmap_files)
    ]
    env = Environment(loader=PackageLoader("miga", "templates"), autoescape=select_autoescape())
    page = env.get_template("report.html.j2").render(
        headline=[(m, METRIC_SPECS[m][0]) for m in HEADLINE],
        cells=[_cell_view(c) for c in cells],
        finished=sum(c.finished for c in cells),
        failed=[c for c in cells if not c.finished],
        missing=[", ".join(f"{k}={v}" for k, v in m.items()) for m in missing],
        sections=sections,
        curves=curves,
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
