"""The built wheel carries everything a default run reads: installed into a fresh folder, the
demo cell runs with the working directory outside the repository (issue 30)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_miga

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def outside_env(site: Path) -> dict[str, str]:
    """Only the installed folder on the path (it precedes the shared venv's editable finder)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "PYTHONPATH": str(site), "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}


def test_wheel_installs_and_runs_the_demo_outside_the_repository(tmp_path: Path) -> None:
    wheels, site, cwd = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    cwd.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO)],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("*.whl")
    assert wheel.name.startswith("miga_attack-")  # the free distribution name, import name miga
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-build-isolation", "--target", str(site), str(wheel)],
        check=True,
    )
    env = outside_env(site)
    where = subprocess.run(
        [sys.executable, "-c", "import miga.conf as c; print(c.__file__)"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).resolve().is_relative_to(site.resolve())
    assert (site / "miga" / "conf" / "denoiser" / "demo.yaml").is_file()

    args = ["logger=none", "dataset=demo_small", "attack.steps=1"]
    run = run_miga(*args, cwd=cwd, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    (summary_file,) = (cwd / "outputs").glob("*/*/summary.json")
    summary = json.loads(summary_file.read_text())
    assert summary["n_images"] == 6  # demo_small: the first 6 photos
    assert summary["linf_max"] == pytest.approx(4 / 255, abs=1e-6)  # conf/budget/linf.yaml
    provenance = json.loads((summary_file.parent / "provenance.json").read_text())
    assert Path(provenance["config"]["paths"]["package"]).resolve() == (site / "miga").resolve()
