"""The tests' one way to run the command line and their one way to build an `Outcome`.

Each test used to spell its own `subprocess.run([sys.executable, "-m", "miga.run", …])` and
its own `Outcome(…)` with positional fields; one copy of each keeps the command, its timeout
and the field defaults in one place (a new `Outcome` field is one edit here).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from miga.attacks.base import AttackResult
from miga.metrics.scorers import Outcome
from tests.conftest import REPO


def miga_command(*args: str, module: str = "miga.run") -> list[str]:
    """`python -m <module> <args>` with this interpreter (module: `miga.run`, `miga.report`,
    or `tests.faults` for `miga.run` with the environment's faults installed)."""
    return [sys.executable, "-m", module, *args]


def run_miga(
    *args: str,
    run_dir: Path | None = None,
    module: str = "miga.run",
    cwd: Path = REPO,
    env: Mapping[str, str] | None = None,
    check: bool = False,
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    """Run the command line as a user would, output captured as text.

    `run_dir` becomes `hydra.run.dir` (each test's outputs in its own temporary folder); `env`
    adds to this process's environment; `check` raises on a non-zero exit.
    """
    if run_dir is not None:
        args = (f"hydra.run.dir={run_dir}", *args)
    return subprocess.run(
        miga_command(*args, module=module),
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=check,
        timeout=timeout,
    )


def make_outcome(clean: Tensor, **fields: object) -> Outcome:
    """An `Outcome` for a scorer test: every image not given is `clean`, δ is zero unless
    given, and the attack result says every sample took 0 steps, none flagged or stopped."""
    batch = clean.shape[0]
    delta = fields.pop("delta", torch.zeros_like(clean))
    flags = torch.zeros(batch, dtype=torch.bool)
    images = {name: fields.pop(name, clean) for name in ("noisy", "denoised", "perturbed")}
    return Outcome(
        clean=clean,
        **images,
        attacked=fields.pop("attacked", clean),
        delta=delta,
        result=fields.pop(
            "result", AttackResult(delta, torch.zeros(batch, dtype=torch.long), flags, flags)
        ),
        **fields,
    )
