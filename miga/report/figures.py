"""The report's figures: heat-maps of a rows × columns grid, and the one figure style the curves
share. Matplotlib is imported when a figure is drawn, so reading cells needs no plotting stack.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from miga.report.format import number

# What each plot must say about its metric: a readable name with units, which way is better,
# and a fixed colour range for rates so that two heat-maps compare by eye.
METRIC_SPECS: dict[str, tuple[str, str, tuple[float, float] | None]] = {
    "acc_denoised": ("accuracy on D(x_n)", "higher is better for the defender", (0.0, 1.0)),
    "acc_attacked": ("accuracy on D(x_n+δ)", "lower = stronger attack", (0.0, 1.0)),
    "success_rate": ("attack success rate", "higher = stronger attack", (0.0, 1.0)),
    "stealth_success_rate": ("stealthy success rate", "higher = stronger attack", (0.0, 1.0)),
    "sensor_success_rate": (
        "success rate under fresh sensor noise (mean over draws)",
        "higher = stronger attack",
        (0.0, 1.0),
    ),
    "psnr_denoised": ("PSNR of D(x_n) [dB]", "higher is better", None),
    "psnr_attacked": ("PSNR of D(x_n+δ) [dB]", "higher = more stealthy", None),
    "ssim_attacked": ("SSIM of D(x_n+δ)", "higher = more stealthy", (0.0, 1.0)),
    "linf_max": ("max L-inf perturbation", "lower = smaller perturbation", None),
}


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (no display on a cluster node)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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


def heatmap(
    path: Path,
    title: str,
    rows: Sequence[str],
    columns: Sequence[str],
    values: Mapping[tuple[str, str], float | None],
    metric: str = "",
) -> None:
    """One PNG per metric and factor: name, units and direction on the colour bar, title wrapped."""
    import textwrap

    plt = pyplot()
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
            ax.text(j, i, number(value), ha="center", va="center", color="w", fontsize=9)
    ax.set_title("\n".join(textwrap.wrap(f"{name} — {title}", 48)), fontsize=9)
    bar = fig.colorbar(image, ax=ax)
    bar.set_label(f"{name}\n({direction})" if direction else name, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def save_figure(fig: Any, path: Path, *axes: Any) -> Path:
    """The report's figure style (light grid, small legend on the last axes), saved and closed."""
    plt = pyplot()
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
