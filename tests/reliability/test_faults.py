"""Fault injection: each bad input or fault gets a clear outcome, and no result is lost.

Every case runs the real command line (`python -m miga.run`) or the real OS fault (signals,
file-size limits), and asserts the exact message or the rows counted before and after.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from miga.callbacks.results_writer import ResultsWriteError, atomic_write_text, read_rows
from tests.conftest import MIGA_KNOBS, REPO, attack_knobs
from tests.faults import FAULT_VARIABLE, WRITE_FAULT_VARIABLE
from tests.helpers import miga_command, run_miga

pytestmark = pytest.mark.slow

TINY = ["dataset.limit=4", "loader.batch_size=1", "attack.steps=2", "logger=none"]
DEMO_WEIGHTS = REPO / "miga" / "zoo" / "weights" / "demo_dncnn.pt"


def miga(run_dir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m miga.run`, or `python -m tests.faults` when `env` asks for a fault."""
    faults = {FAULT_VARIABLE, WRITE_FAULT_VARIABLE} & set(env or {})
    module = "tests.faults" if faults else "miga.run"
    return run_miga(*args, run_dir=run_dir, module=module, env=env, timeout=600)


def error_line(out: subprocess.CompletedProcess) -> str:
    lines = [line for line in out.stderr.splitlines() if line.startswith("miga: error:")]
    assert out.returncode != 0 and len(lines) == 1, out.stderr[-2000:]
    return lines[0]


# --- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override,message",
    [
        ("attack.steps=abc", "attack.steps must be an integer, got 'abc'"),
        ("attack.steps=0", "MIGA needs attack.steps >= 1, got 0"),
        ("budget.epsilon=-0.1", "budget epsilon must be >= 0, got -0.1"),
        ("noise.sigma=-5", "noise.sigma must be >= 0, got -5"),
    ],
)
def test_bad_values_stop_with_one_line_naming_the_key(tmp_path, override, message) -> None:
    assert message in error_line(miga(tmp_path, *TINY, override))


def test_misspelled_key_is_refused_by_the_schema(tmp_path) -> None:
    out = miga(tmp_path, *TINY, "attack.stepz=3")
    assert out.returncode != 0
    assert "Could not override 'attack.stepz'" in out.stderr
    assert "Key 'stepz' is not in struct" in out.stderr


# --- files ----------------------------------------------------------------------------------


def test_checkpoint_of_another_architecture_names_file_and_keys(tmp_path) -> None:
    line = error_line(
        miga(tmp_path, *TINY, "denoiser=dncnn", f"denoiser.checkpoint={DEMO_WEIGHTS}")
    )
    assert f"{DEMO_WEIGHTS} does not match DnCNN colour blind" in line
    assert "missing ['model.16.weight'" in line and "shape mismatch ['model.0.weight" in line


def test_truncated_checkpoint_is_named(tmp_path) -> None:
    broken = tmp_path / "truncated.pt"
    broken.write_bytes(DEMO_WEIGHTS.read_bytes()[:5000])
    line = error_line(miga(tmp_path / "run", *TINY, f"denoiser.checkpoint={broken}"))
    assert f"{broken}: cannot be read as a torch checkpoint" in line


def test_missing_dataset_root_is_named(tmp_path) -> None:
    missing = tmp_path / "no_imagenet"
    line = error_line(
        miga(tmp_path / "run", "dataset=imagenet", f"dataset.root={missing}", "logger=none")
    )
    assert str(missing) in line


def test_unwritable_output_folder_is_a_clear_error() -> None:
    # /sys refuses new folders even to root: a read-only location CI can always reproduce.
    # Hydra creates the run folder before miga starts, so the message is Hydra's.
    out = miga(Path("/sys/miga_results"), *TINY)
    assert out.returncode != 0
    assert "Operation not permitted: '/sys/miga_results'" in out.stderr


def test_results_of_an_older_format_are_refused(tmp_path) -> None:
    assert miga(tmp_path, *TINY).returncode == 0
    provenance = tmp_path / "provenance.json"
    record = json.loads(provenance.read_text())
    provenance.write_text(json.dumps({**record, "results_format": 0}))
    assert "holds results in format 0; this version writes format 1" in error_line(
        miga(tmp_path, *TINY)
    )


def test_disk_full_while_writing_keeps_earlier_rows(tmp_path) -> None:
    """A real EFBIG from the OS (RLIMIT_FSIZE), not a mock: the old file survives whole."""
    target = tmp_path / "samples.csv"
    atomic_write_text(target, "id,x\n0,1.0\n")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, hard))
    try:
        with pytest.raises(ResultsWriteError, match=f"cannot write results file {target}"):
            atomic_write_text(target, "id,x\n" + "1,2.0\n" * 1000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)
    assert target.read_text() == "id,x\n0,1.0\n"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


# --- process --------------------------------------------------------------------------------


def _rows(run_dir: Path) -> list[int]:
    return sorted(r["id"] for p in (run_dir / "rows").glob("*.csv") for r in read_rows(p))


def test_sigkill_mid_cell_then_rerun_completes_without_duplicates(tmp_path) -> None:
    killed = miga(tmp_path, *TINY, env={FAULT_VARIABLE: "2"})
    assert killed.returncode == 137
    assert _rows(tmp_path) == [0, 1]
    before = {p.name: p.read_bytes() for p in (tmp_path / "rows").glob("*.csv")}
    assert miga(tmp_path, *TINY).returncode == 0
    assert _rows(tmp_path) == [0, 1, 2, 3]
    assert all((tmp_path / "rows" / name).read_bytes() == data for name, data in before.items())
    assert [r["id"] for r in read_rows(tmp_path / "samples.csv")] == [0, 1, 2, 3]


def test_kill_while_a_part_file_is_written_then_rerun_completes(tmp_path) -> None:
    """The process dies half-way through writing batch 2's part file (after fsync, before the
    rename): the half-written file is never read as rows, and the re-run recomputes exactly the
    missing batches and ends with complete, unique rows."""
    killed = miga(tmp_path, *TINY, env={WRITE_FAULT_VARIABLE: "rank0-00000002.csv"})
    assert killed.returncode == 137
    assert _rows(tmp_path) == [0, 1]
    leftovers = [p for p in (tmp_path / "rows").iterdir() if not p.name.endswith(".csv")]
    assert leftovers and leftovers[0].read_text().startswith("id,")  # the torn write is there
    before = {p.name: p.read_bytes() for p in (tmp_path / "rows").glob("*.csv")}
    assert miga(tmp_path, *TINY).returncode == 0
    assert _rows(tmp_path) == [0, 1, 2, 3]
    assert all((tmp_path / "rows" / name).read_bytes() == data for name, data in before.items())
    ids = [r["id"] for r in read_rows(tmp_path / "samples.csv")]
    assert ids == [0, 1, 2, 3]
    assert json.loads((tmp_path / "summary.json").read_text())["n_images"] == 4


def _start(run_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        miga_command(f"hydra.run.dir={run_dir}", *args),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition, seconds: float = 240.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_sigterm_mid_cell_then_rerun_completes(tmp_path) -> None:
    slow = [*TINY, "attack.steps=6"]
    process = _start(tmp_path, *slow)
    _wait_for(lambda: len(_rows(tmp_path)) >= 1 if (tmp_path / "rows").is_dir() else False)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=120)
    assert process.returncode != 0
    done = _rows(tmp_path)
    assert 1 <= len(done) <= 3, done  # stopped before the last batch
    assert len(done) == len(set(done))
    assert not list((tmp_path / "rows").glob(".*tmp*"))  # nothing half-written
    assert miga(tmp_path, *slow).returncode == 0
    assert [r["id"] for r in read_rows(tmp_path / "samples.csv")] == [0, 1, 2, 3]


def test_second_process_on_the_same_cell_is_refused(tmp_path) -> None:
    first = _start(tmp_path, *TINY, "attack.steps=6")
    _wait_for(lambda: (tmp_path / "provenance.json").exists())
    # Freeze the first process while it holds the cell, so that on a loaded machine it cannot
    # finish before the second one arrives (which would make the second a plain resume).
    os.kill(first.pid, signal.SIGSTOP)
    try:
        second = miga(tmp_path, *TINY, "attack.steps=6")
    finally:
        os.kill(first.pid, signal.SIGCONT)
    first.communicate(timeout=300)
    assert "is being written by another process (pid" in error_line(second)
    assert first.returncode == 0
    assert [r["id"] for r in read_rows(tmp_path / "samples.csv")] == [0, 1, 2, 3]


# --- W&B ------------------------------------------------------------------------------------


def test_wandb_online_without_network_continues_offline(tmp_path) -> None:
    env = {"WANDB_API_KEY": "", "WANDB_BASE_URL": "http://127.0.0.1:9"}
    out = miga(tmp_path, *[a for a in TINY if a != "logger=none"], "logger.mode=online", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (out.stdout + out.stderr).count("W&B online unavailable") == 1
    assert list((tmp_path / "wandb").glob("offline-run-*"))
    assert json.loads((tmp_path / "summary.json").read_text())["n_images"] == 4


# --- numerics -------------------------------------------------------------------------------


def test_black_and_white_images_attack_without_nan(demo_models) -> None:
    from functools import partial

    from miga.attacks.budgets import LinfBall
    from miga.attacks.miga import MIGA
    from miga.attacks.state import AttackInputs, Victim
    from miga.mi.cross_entropy import CrossEntropyMI

    denoiser, classifier = demo_models
    clean = torch.stack([torch.zeros(3, 32, 32), torch.ones(3, 32, 32)])
    inputs = AttackInputs(
        clean, clean, denoiser(clean), torch.arange(2), label=torch.tensor([1, 2])
    )
    attack = MIGA(
        CrossEntropyMI(),
        steps=3,
        optimizer=partial(torch.optim.Adam, lr=0.1),
        budget=LinfBall(4 / 255),
        **attack_knobs("miga", *MIGA_KNOBS),
    )
    with torch.enable_grad():
        result = attack(inputs, Victim(denoiser, classifier))
    assert not result.flagged.any() and torch.isfinite(result.delta).all()
    assert result.delta.abs().max() <= 4 / 255 + 1e-6
    assert ((clean + result.delta) >= 0).all() and ((clean + result.delta) <= 1).all()


def test_images_smaller_than_the_padding_multiple() -> None:
    from miga.denoisers import Denoiser
    from miga.denoisers.restormer import Restormer

    net = Restormer(
        dim=8,
        num_blocks=[1, 1, 1, 1],
        num_refinement_blocks=1,
        heads=[1, 1, 1, 1],
        LayerNorm_type="BiasFree",
    )
    with pytest.warns(UserWarning, match="RANDOM weights"):
        denoiser = Denoiser(net=net, pad_multiple=8)
    out = denoiser(torch.rand(1, 3, 5, 7))
    assert out.shape == (1, 3, 5, 7) and torch.isfinite(out).all()


def test_huge_images_take_the_tiling_path_and_match(demo_models) -> None:
    from miga.denoisers import Denoiser

    whole = demo_models[0]
    tiled = Denoiser(net=whole.net, checkpoint=None, tile=96, tile_overlap=32)
    image = torch.rand(1, 3, 300, 260)
    with torch.no_grad():
        torch.testing.assert_close(tiled(image), whole(image), atol=1e-5, rtol=0)
