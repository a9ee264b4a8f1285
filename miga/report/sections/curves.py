"""Strength curves, the strongest-baseline step-size table and the ablation table.

`sections(cells, out)`: from each cell's settings (`Cell.settings`: its group choices, its
`.hydra/overrides.yaml`, and `budget.epsilon` / `attack.steps` from `.hydra/config.yaml` where
not overridden) it draws success and stealth success against epsilon and against steps, and
PSNR(D(x_n+delta), x) against success rate (PNG, error bars from the summaries' `_ci95`
intervals), and writes the step-size and ablation tables as Markdown. A line
joins only cells equal in every setting but its x (so an L-inf and an L2 budget, or two noise
levels, are never one curve); its legend names the settings that tell the lines apart.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from miga.metrics.summary import CI_SUFFIX
from miga.report.cells import DEFAULT, EPSILON, STEPS, Cell, Line, line_labels, varying_keys
from miga.report.figures import pyplot, save_figure
from miga.report.format import markdown_table, sortable, summary_value

ORDER = 30

#: Each attack's step-size knob (the override that names it), in the order looked up.
STEP_KNOBS = ("attack.optimizer.lr", "attack.step_fraction")
#: The step-size pick: highest success rate, then stealth success, then PSNR(D(x_n+delta), x).
PICK_KEYS = ("success_rate", "stealth_success_rate", "psnr_attacked")
ABLATION_KEY = "ablation"
ABLATION_METRICS = (
    "success_rate",
    "stealth_success_rate",
    "psnr_attacked",
    "psnr_perturbed_vs_noisy",
    "linf_max",
    "heldout_critic_attacked",
    "attack_critic_attacked",
    "rouge_attacked",
    "rouge_attacked_vs_reference",
)
#: (attack, settings, summary) of one finished cell: what the curves and protocol tables read.
Entry = tuple[str, dict[str, str], dict]


def pick_best(grid: Sequence[tuple[str, dict]]) -> tuple[str, dict]:
    """The (step value, summary) of a grid that ranks first by PICK_KEYS (ties: first listed)."""
    if not grid:
        raise ValueError("pick_best: empty step-size grid")
    return max(grid, key=lambda entry: tuple(sortable(entry[1].get(k)) for k in PICK_KEYS))


def stepsize_section(entries: Sequence[Entry]) -> str:
    """Per attack its step-size grid with the pick marked, then every attack at its best step.
    A grid holds cells equal in every setting but the step size; where the sweep varies more
    (e.g. two datasets), each grid is named by the settings that tell the grids apart."""
    grids: dict[Line, list[tuple[str, dict]]] = defaultdict(list)
    for attack, params, summary in entries:
        knob = next((k for k in STEP_KNOBS if k in params), None)
        if knob is not None:
            rest = sorted((k, str(v)) for k, v in params.items() if k not in (knob, "attack"))
            grids[(("attack", attack), ("knob", knob), *rest)].append((params[knob], summary))
    if not grids:
        return ""
    stripped = {key: tuple(kv for kv in key if kv[0] != "knob") for key in grids}
    names = line_labels(list(set(stripped.values())))
    parts = [
        "## Step size (strongest-baseline protocol)\n",
        "Pick: highest success rate, then stealth success, then PSNR(D(x_n+δ), x).\n",
    ]
    best_rows = []
    for key, grid in sorted(grids.items()):
        knob, name = dict(key)["knob"], names[stripped[key]]
        grid.sort(key=lambda e: sortable(e[0]))
        best = pick_best(grid)
        rows = [
            [f"{v}{' (picked)' if s is best[1] else ''}", *[summary_value(s, k) for k in PICK_KEYS]]
            for v, s in grid
        ]
        parts.append(f"### {name} ({knob})\n\n" + markdown_table([knob, *PICK_KEYS], rows) + "\n")
        best_rows.append(
            [name, f"{knob}={best[0]}", *[summary_value(best[1], k) for k in PICK_KEYS]]
        )
    parts.append(
        "### At the best step size\n\n"
        + markdown_table(["attack", "picked", *PICK_KEYS], best_rows)
        + "\n"
    )
    return "\n".join(parts)


def ablation_section(entries: Sequence[Entry]) -> str:
    """One row per ablation variant, the full attack first; only metrics some row has. Where
    the sweep varies more than the variant, each row also names the settings that differ."""
    cells = [(p, s) for _, p, s in entries if ABLATION_KEY in p]
    if not cells:
        return ""
    others = [
        k for k in varying_keys([{**p, ABLATION_KEY: ""} for p, _ in cells]) if k != ABLATION_KEY
    ]
    rows = []
    for params, summary in cells:
        extra = ", ".join(f"{k}={params.get(k, DEFAULT)}" for k in others)
        rows.append((params[ABLATION_KEY], extra, summary))
    rows.sort(key=lambda r: (r[1], r[0] != "full", r[0]))
    metrics = [m for m in ABLATION_METRICS if any(m in s for _, _, s in rows)]
    body = [
        [f"{name} ({extra})" if extra else name, *[summary_value(s, m) for m in metrics]]
        for name, extra, s in rows
    ]
    return "## Ablation\n\n" + markdown_table(["ablation", *metrics], body) + "\n"


def series(entries: Sequence[Entry], x_key: str) -> dict[Line, list[tuple[float, dict]]]:
    """{line: [(x, summary)]} for lines with at least two x values, where a line is the attack
    and every other setting but `x_key`: cells that differ in anything but x are never joined."""
    lines: dict[Line, list[tuple[float, dict]]] = defaultdict(list)
    for attack, params, summary in entries:
        if ABLATION_KEY in params or any(k in params for k in STEP_KNOBS) or x_key not in params:
            continue
        rest = sorted((k, str(v)) for k, v in params.items() if k not in (x_key, "attack"))
        lines[(("attack", attack), *rest)].append((sortable(params[x_key]), summary))
    return {
        k: sorted(v, key=lambda e: e[0]) for k, v in lines.items() if len({x for x, _ in v}) > 1
    }


def _errorbar(ax: Any, xs: list[float], summaries: list[dict], key: str, label: str) -> None:
    ys = [sortable(s.get(key)) for s in summaries]
    lo = [y - s.get(key + CI_SUFFIX, [y, y])[0] for y, s in zip(ys, summaries)]
    hi = [s.get(key + CI_SUFFIX, [y, y])[1] - y for y, s in zip(ys, summaries)]
    ax.errorbar(xs, ys, yerr=[lo, hi], label=label, capsize=2, marker="o", ms=3)


def draw_curves(entries: Sequence[Entry], out: Path) -> list[Path]:
    """curve_vs_epsilon.png, curve_vs_steps.png, curve_psnr_vs_success.png (where data allow)."""
    plt = pyplot()
    written = []
    points = []  # (line label, summary) for the trade-off plot
    for x_key, name, scale in ((EPSILON, "epsilon", 255.0), (STEPS, "steps", 1.0)):
        lines = series(entries, x_key)
        if not lines:
            continue
        labels = line_labels(list(lines))
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
        for key, line in sorted(lines.items()):
            xs = [x * scale for x, _ in line]
            label = labels[key]
            _errorbar(axes[0], xs, [s for _, s in line], "success_rate", label)
            _errorbar(axes[1], xs, [s for _, s in line], "stealth_success_rate", label)
            points += [(f"{label} vs {name}", s) for _, s in line]
        for ax, title in zip(axes, ("success rate", "stealth success rate")):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("epsilon × 255" if name == "epsilon" else "steps")
            ax.set_title(title, fontsize=9)
        written.append(save_figure(fig, out / f"curve_vs_{name}.png", *axes))
    if points:
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        by_line: dict[str, list[dict]] = defaultdict(list)
        for line_label, summary in points:
            by_line[line_label].append(summary)
        for line_label, summaries in sorted(by_line.items()):
            summaries.sort(key=lambda s: sortable(s.get("success_rate")))
            ax.plot(
                [sortable(s.get("success_rate")) for s in summaries],
                [sortable(s.get("psnr_attacked")) for s in summaries],
                marker="o",
                ms=3,
                label=line_label,
            )
        ax.set_xlabel("success rate")
        ax.set_ylabel("PSNR(D(x_n+δ), x) dB")
        written.append(save_figure(fig, out / "curve_psnr_vs_success.png", ax))
    return written


def sections(cells: Sequence[Cell], out: Path) -> list[str]:
    """Markdown sections (curves, step size, ablation) for report.md; PNGs saved under `out`."""
    entries = [(c.choices.get("attack", "?"), c.settings, c.summary) for c in cells if c.finished]
    parts = []
    pngs = draw_curves(entries, out)
    if pngs:
        parts.append(
            "## Strength curves\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in pngs) + "\n"
        )
    parts += [s for s in (stepsize_section(entries), ablation_section(entries)) if s]
    return parts
