"""`--wandb`: the report as one W&B run (the cells table and the heat-maps), for those who sync."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from miga.report.cells import DEFAULT, Cell, recorded_keys
from miga.report.write import summary_keys


def log_to_wandb(cells: Sequence[Cell], report_dir: Path, mode: str) -> None:
    """One W&B run holding the cells table and the heat-maps (files under `report_dir`)."""
    import wandb

    from miga.utils.wandb_env import point_wandb_into

    point_wandb_into(report_dir)
    keys, metrics = recorded_keys(cells), summary_keys(cells)
    run = wandb.init(project="miga", job_type="report", mode=mode, dir=str(report_dir))
    data = [
        [*[c.recorded.get(k, DEFAULT) for k in keys], *[(c.summary or {}).get(m) for m in metrics]]
        for c in cells
    ]
    run.log({"cells": wandb.Table(columns=[*keys, *metrics], data=data)})
    run.log({p.stem: wandb.Image(str(p)) for p in sorted(report_dir.glob("*.png"))})
    run.finish()
