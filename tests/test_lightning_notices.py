"""The two Lightning warnings a cell ignores, raised by Lightning's own code: gone where no user
can act on them, still shown where one can, and no other warning hidden."""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import pytest
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities._pytree import _tree_flatten

from miga.utils.lightning_notices import lightning_notices_ignored

SLURM_VARIABLES = ("SLURM_JOB_ID", "SLURM_NTASKS", "SLURM_JOB_NAME")


@pytest.fixture
def srun_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with SLURM installed (an `srun` on PATH), outside any SLURM job."""
    srun = tmp_path / "srun"
    srun.write_text("#!/bin/sh\nexit 0\n")
    srun.chmod(srun.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    for variable in SLURM_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def messages(num_nodes: int | None, action) -> list[str]:  # noqa: ANN001
    """The warnings `action` raises, inside the context (num_nodes) or without it (None)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if num_nodes is None:
            action()
        else:
            with lightning_notices_ignored(num_nodes=num_nodes):
                action()
    return [str(w.message) for w in caught]


def srun_hints(num_nodes: int | None) -> int:
    return sum(
        "`srun` command is available" in m for m in messages(num_nodes, SLURMEnvironment.detect)
    )


def test_the_srun_hint_is_ignored_outside_a_slurm_job_on_one_node(srun_on_path) -> None:
    assert srun_hints(None) == 1  # Lightning's detection warns here
    assert srun_hints(1) == 0


def test_the_srun_hint_stays_inside_a_slurm_job_and_for_several_nodes(
    srun_on_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert srun_hints(2) == 1  # several nodes without srun hang: the hint is the fix
    monkeypatch.setenv("SLURM_JOB_ID", "42")  # salloc'ed, python started without srun
    assert srun_hints(1) == 1


def test_inside_an_srun_task_lightning_still_detects_slurm(srun_on_path, monkeypatch) -> None:
    for variable, value in {
        "SLURM_JOB_ID": "42",
        "SLURM_NTASKS": "1",
        "SLURM_JOB_NAME": "miga",
    }.items():
        monkeypatch.setenv(variable, value)
    with lightning_notices_ignored():
        assert SLURMEnvironment.detect()


def test_lightnings_leafspec_deprecation_is_ignored_and_other_future_warnings_are_not() -> None:
    def flatten_and_warn() -> None:
        _tree_flatten([1, 2])  # a container of primitives: Lightning builds a LeafSpec
        warnings.warn("a real deprecation", FutureWarning, stacklevel=1)

    outside = messages(None, flatten_and_warn)
    assert any("LeafSpec" in m for m in outside)  # Lightning 2.6.6 on torch 2.14 warns
    assert messages(1, flatten_and_warn) == ["a real deprecation"]
