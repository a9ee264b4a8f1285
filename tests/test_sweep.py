"""Sweeps: a killed grid resumes without recomputing, DDP equals one process, launchers work."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest

from miga.callbacks.results_writer import read_rows
from miga.report import main as report_main
from tests.faults import FAULT_VARIABLE
from tests.helpers import run_miga

pytestmark = pytest.mark.slow

TINY = ["attack.steps=1", "dataset.limit=4", "loader.batch_size=2", "logger=none"]


def miga(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m miga.run`, or `python -m tests.faults` when `env` asks for a fault."""
    module = "tests.faults" if FAULT_VARIABLE in (env or {}) else "miga.run"
    return run_miga(*args, module=module, env=env, check=check)


def _cells(sweep: Path) -> dict[str, Path]:
    return {p.parent.parent.name: p.parent for p in sweep.rglob("provenance.json")}


def test_killed_grid_resumes_to_the_uninterrupted_numbers(tmp_path: Path) -> None:
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    grid = ["-m", "experiment=demo_grid", *TINY]
    crash = miga(*grid, f"hydra.sweep.dir={killed}", env={FAULT_VARIABLE: "1"}, check=False)
    assert crash.returncode == 137
    first = next(iter(_cells(killed).values()))
    part = next((first / "rows").glob("*.csv"))
    written = part.read_bytes(), part.stat().st_mtime_ns
    assert not (first / "summary.json").exists()

    assert report_main([str(killed)]) == 1  # incomplete and missing cells are reported

    miga(*grid, f"hydra.sweep.dir={killed}")
    assert (part.read_bytes(), part.stat().st_mtime_ns) == written  # finished batch kept
    miga(*grid, f"hydra.sweep.dir={clean}")

    resumed_cells, clean_cells = _cells(killed), _cells(clean)
    assert sorted(resumed_cells) == sorted(clean_cells) and len(clean_cells) == 4
    for name, folder in clean_cells.items():
        assert (resumed_cells[name] / "samples.csv").read_bytes() == (
            folder / "samples.csv"
        ).read_bytes(), name
    assert report_main([str(killed)]) == 0
    report = (killed / "report" / "report.md").read_text()
    assert "4 finished cells, 0 failed or incomplete, 0 missing" in report
    assert "| gaussian_filter |" in report and "demo_small" in report
    assert (killed / "report" / "cells.csv").read_text().count("finished") == 4
    assert list((killed / "report").glob("acc_attacked__*.png"))


def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path: Path) -> None:
    miga(*TINY, f"hydra.run.dir={tmp_path / 'one'}")
    miga(*TINY, "trainer=ddp", "trainer.devices=2", f"hydra.run.dir={tmp_path / 'ddp'}")
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "ddp" / "rows").glob("*.csv")) == [
        "rank0",
        "rank1",
    ]
    one = read_rows(tmp_path / "one" / "samples.csv")
    ddp = read_rows(tmp_path / "ddp" / "samples.csv")
    assert [r["id"] for r in ddp] == [r["id"] for r in one] == [0, 1, 2, 3]
    for a, b in zip(one, ddp, strict=True):
        for key, value in a.items():
            if isinstance(value, str):  # a class-name column
                assert value == b[key], key
                continue
            # ranks batch other samples together: only kernel rounding may differ
            assert math.isclose(value, b[key], rel_tol=1e-3, abs_tol=1e-5) or (
                math.isnan(value) and math.isnan(b[key])
            ), key


def test_ddp_inside_a_multirun_is_refused(tmp_path: Path) -> None:
    out = miga("-m", *TINY, "trainer=ddp", f"hydra.sweep.dir={tmp_path}", check=False)
    assert out.returncode != 0
    assert "inside a multirun (-m): DDP would relaunch the whole sweep" in out.stderr


def test_submitit_local_launcher_runs_a_cell(tmp_path: Path) -> None:
    miga(
        "-m",
        *TINY,
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        f"hydra.sweep.dir={tmp_path}",
    )
    summaries = list(tmp_path.rglob("summary.json"))
    assert len(summaries) == 1


def test_slurm_launcher_config_composes() -> None:
    out = miga("experiment=paper_grid", "hydra/launcher=slurm", "--cfg", "hydra")
    assert "SlurmLauncher" in out.stdout and "gpus_per_node: 1" in out.stdout
