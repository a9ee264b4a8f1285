"""Sweeps through a real SLURM scheduler: a one-node cluster started by scripts/slurm-local.sh.

Real munged, slurmctld and slurmd; submitit's real `sbatch`; `scancel` as a user would. No
accounting database (`sacct` fails; submitit tolerates it), and nothing here reads `sacct`.
Skipped, with the script's reason, where the cluster cannot start (not root, no packages).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from miga.callbacks.results_writer import read_rows
from miga.report import main as report_main
from tests.conftest import REPO

pytestmark = pytest.mark.slow

SCRIPT = REPO / "scripts" / "slurm-local.sh"
LAUNCHER = ["hydra/launcher=slurm_local", "logger=none"]
PID_FILES = ("run/slurmctld.pid", "run/slurmd.pid", "run/munged.pid")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "MIGA_SLURM_DIR": str(state)}
    started = subprocess.run(
        ["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=120
    )
    if started.returncode != 0:
        pytest.skip(f"no local SLURM cluster: {started.stderr.strip()}")
    pids = [int((state / name).read_text()) for name in PID_FILES]
    env["SLURM_CONF"] = str(state / "slurm.conf")
    yield env
    subprocess.run(["bash", str(SCRIPT), "stop"], env=env, check=True, timeout=60)
    for pid in pids:  # every daemon the tests started is gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def sweep(env: dict, out: Path, *overrides: str, wait: bool = True):  # noqa: ANN201
    command = [
        sys.executable,
        "-m",
        "miga.run",
        "-m",
        *LAUNCHER,
        *overrides,
        f"hydra.sweep.dir={out}",
    ]
    if not wait:
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def queue(env: dict) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%A"], env=env, capture_output=True, text=True)
    return out.stdout.split()


def drained(env: dict, timeout: float = 60.0) -> bool:
    """Whether the queue empties within `timeout` (a cancelled job passes through COMPLETING)."""
    deadline = time.monotonic() + timeout
    while queue(env):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def cells(out: Path) -> list[Path]:
    return sorted(p.parent for p in out.rglob("provenance.json"))


def test_demo_grid_runs_as_one_slurm_job_per_cell(cluster: dict, tmp_path: Path) -> None:
    out = tmp_path / "grid"
    done = sweep(cluster, out, "experiment=demo_grid", "attack.steps=2", "dataset.limit=4")
    assert done.returncode == 0, done.stderr[-3000:]
    scripts = list((out / ".submitit").rglob("*_submission.sh"))
    assert scripts, "no sbatch script: the cells did not go through SLURM"
    text = scripts[0].read_text()
    assert "#SBATCH --partition=debug" in text and "#SBATCH --array=0-3%2" in text
    job_logs = list((out / ".submitit").rglob("*_log.out"))
    assert len(job_logs) == 4  # one array task per cell
    assert len(cells(out)) == 4
    for cell in cells(out):
        assert json.loads((cell / "summary.json").read_text())["n_images"] == 4
    assert report_main([str(out)]) == 0  # every cell finished, none missing


def test_a_cancelled_job_resumes_keeping_its_finished_batches(
    cluster: dict, tmp_path: Path
) -> None:
    out = tmp_path / "cancel"
    args = ("attack.steps=3", "dataset.limit=8", "loader.batch_size=1")
    running = sweep(cluster, out, *args, wait=False)
    deadline = time.monotonic() + 300
    while len(list(out.rglob("rows/*.csv"))) < 2:
        assert time.monotonic() < deadline and running.poll() is None, running.stdout.read()
        time.sleep(0.3)
    (job,) = queue(cluster)
    subprocess.run(["scancel", job], env=cluster, check=True)
    log = running.communicate(timeout=120)[0]
    assert running.returncode != 0 and "SIGTERM received" in log
    assert drained(cluster), queue(cluster)
    (cell,) = cells(out)
    kept = {p.name: p.read_bytes() for p in (cell / "rows").glob("*.csv")}
    assert 2 <= len(kept) < 8 and not (cell / "summary.json").exists()

    resumed = sweep(cluster, out, *args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    parts = {p.name: p.read_bytes() for p in (cell / "rows").glob("*.csv")}
    assert all(parts[name] == data for name, data in kept.items())  # kept, not recomputed
    ids = [row["id"] for row in read_rows(cell / "samples.csv")]
    assert sorted(ids) == list(range(8))  # the rest computed, every id once


def test_a_cell_failing_inside_its_job_is_reported_failed(cluster: dict, tmp_path: Path) -> None:
    out = tmp_path / "failing"
    # dncnn's official file is not on this machine: that cell fails inside its job
    done = sweep(cluster, out, "denoiser=demo,dncnn", "attack.steps=1", "dataset.limit=2")
    assert done.returncode != 0
    assert "checkpoint not found" in done.stderr and "dncnn_color_blind.pth" in done.stderr
    assert drained(cluster), queue(cluster)  # nothing left hanging in the queue
    status = {c.parent.name: (c / "summary.json").exists() for c in cells(out)}
    assert status == {"miga_demo_demo": True, "miga_dncnn_demo": False}
    report_dir = out / "report"
    assert report_main([str(out), "--out", str(report_dir)]) == 1
    assert "failed/incomplete" in (report_dir / "report.md").read_text()
