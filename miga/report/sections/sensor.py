"""The sensor threat model in the report: how much of an attack's effect survives noise draws
it never saw (the sensor threat model, docs/threat_models.md).

One row per attack (and any other setting the sweep varies) and K (EOT draws per attack step;
0 = the white-box δ fitted to the cell's own x_n): success on the cell's x_n (the draw a K = 0
attack fitted; for K ≥ 1 one more draw the attack never saw), and on the M fresh draws (mean,
spread across draws, 95 % interval over images). `sensor_success.png` draws the fresh-draw
success against K.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from miga.report.cells import ATTACK_DRAWS, Cell, key_of, line_labels, sweep_keys
from miga.report.figures import pyplot, save_figure
from miga.report.format import markdown_table, number, sortable, summary_value, two_decimals

ORDER = 40

KEY = "sensor_success_rate"


def _entries(cells: Sequence[Cell]) -> dict[str, list[tuple[int, dict]]]:
    """{line: [(K, summary)]} over finished cells scored under the sensor model, K sorted; a
    line is the attack and the other settings that vary across the sweep (labelled by those
    that differ between lines), so cells that differ in anything but K are never one line."""
    scored = [c for c in cells if c.finished and KEY in c.summary]
    keys = [k for k in sweep_keys(scored) if k not in ("attack", ATTACK_DRAWS)]
    lines: dict[tuple, list[tuple[int, dict]]] = defaultdict(list)
    for cell in scored:
        draws = int(sortable(cell.params.get(ATTACK_DRAWS, "nan")))
        line = (("attack", cell.choices.get("attack", "?")), *key_of(cell, keys))
        lines[line].append((draws, cell.summary))
    labels = line_labels(list(lines))
    return {labels[k]: sorted(e, key=lambda x: x[0]) for k, e in sorted(lines.items())}


def sensor_table(entries: dict[str, list[tuple[int, dict]]]) -> str:
    rows = []
    for attack, line in entries.items():
        for draws, summary in line:
            spread = summary.get(KEY + "_std")
            rows.append(
                [
                    attack,
                    "white-box δ (0)" if draws == 0 else str(draws),
                    summary_value(summary, "success_rate"),
                    summary_value(summary, KEY),
                    number(spread, two_decimals),
                    str(len(summary.get(KEY + "_draws", []))),
                    summary_value(summary, "sensor_acc_attacked"),
                ]
            )
    header = [
        "attack",
        "K (EOT draws/step)",
        "success on the cell's x_n",
        "success, fresh draws",
        "std over draws",
        "M",
        "acc on D(x+n+δ), fresh",
    ]
    return markdown_table(header, rows)


def draw(entries: dict[str, list[tuple[int, dict]]], out: Path) -> Path | None:
    """Success on fresh draws against K, one line per attack (bars: std over draws)."""
    if not any(len(line) > 1 for line in entries.values()):
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for attack, line in entries.items():
        xs = [k for k, _ in line]
        ax.errorbar(
            xs,
            [sortable(s.get(KEY)) for _, s in line],
            yerr=[sortable(s.get(KEY + "_std")) for _, s in line],
            marker="o",
            ms=3,
            capsize=2,
            label=f"{attack}, fresh draws",
        )
        ax.plot(
            xs,
            [sortable(s.get("success_rate")) for _, s in line],
            ls=":",
            label=f"{attack}, cell's x_n",
        )
    ax.set_xlabel("K, EOT draws per attack step (0 = white-box δ)")
    ax.set_ylabel("success rate")
    ax.set_ylim(0, 1.02)
    return save_figure(fig, out / "sensor_success.png", ax)


def sections(cells: Sequence[Cell], out: Path) -> list[str]:
    """The report.md section (empty when no cell was scored under the sensor model)."""
    entries = _entries(cells)
    if not entries:
        return []
    png = draw(entries, out)
    figure = f"\n\n![{png.stem}]({png.name})" if png else ""
    return ["## Noise the attack never saw (sensor)\n\n" + sensor_table(entries) + figure + "\n"]
