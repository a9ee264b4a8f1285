"""The suite passes wherever the project is cloned: a copy of the working tree in a folder named
`miga`, with the venv inside it (`miga/.venv`, as `make install` makes it in a fresh clone),
runs the host-read tests there. That layout is the trap of issue 25: torch's own files then
live under `.../miga/.venv/lib/.../torch/`, and a path-substring test for "our" files counted
Adam's CPU step as the package's (`4 == 8` in the loop's read count)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

#: Run in the copy: HostReads' own tests and the loop's read count that failed in a `miga` clone.
TESTS = [
    "tests/test_host_reads.py",
    "tests/test_loop_equivalence.py::test_without_a_stopping_rule_the_loop_reads_the_device_once_per_batch[miga]",
]
#: Never copied when the tree is not a git checkout (build, run and cache output).
NOT_SOURCE = (
    ".git",
    ".venv",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".ruff_cache",
    "outputs",
    "multirun",
    "wandb",
    "checkpoints",
    "data",
)


def _source_files() -> list[Path] | None:
    """The working tree's files as git sees them (tracked and new, ignored ones left out), so
    that uncommitted changes are tested too; None outside a git checkout."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        return None
    return [Path(name) for name in listed.split("\0") if name and (REPO / name).is_file()]


def _copy_tree(target: Path) -> None:
    files = _source_files()
    if files is None:
        shutil.copytree(REPO, target, ignore=shutil.ignore_patterns(*NOT_SOURCE), symlinks=True)
        return
    for name in files:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target / name)


def _venv_inside(clone: Path) -> Path:
    """`clone/.venv` linked to this interpreter's environment; its python, started through the
    link, puts torch under `clone/.venv/...` (a venv finds its prefix from the path it is started
    by, not the resolved one)."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("not running in a virtual environment: no venv to place inside the clone")
    (clone / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    return clone / ".venv" / Path(sys.executable).relative_to(sys.prefix)


def test_a_clone_named_miga_with_its_venv_inside_passes_the_host_read_tests(tmp_path) -> None:
    clone = tmp_path / "miga"
    _copy_tree(clone)
    python = _venv_inside(clone)
    env = {**os.environ, "PYTHONPATH": str(clone), "OMP_NUM_THREADS": "1"}
    where = subprocess.run(
        [str(python), "-c", "import miga, torch; print(miga.__file__); print(torch.__file__)"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split("\n")
    # the trap is set: our package from the clone, torch from inside the clone's folder
    assert Path(where[0]).is_relative_to(clone / "miga")
    assert Path(where[1]).is_relative_to(clone / ".venv")

    done = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *TESTS],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "6 passed" in done.stdout  # five HostReads tests and the loop's read count
