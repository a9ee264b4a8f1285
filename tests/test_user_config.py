"""A researcher's own denoiser in their own package and config folder, no fork (issue 30):
found through `hydra.searchpath`, checked against the denoiser contract at cell start."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from miga.api import build, compose_cell
from miga.contracts import ContractError
from tests.helpers import run_miga

REPO = Path(__file__).resolve().parents[1]

USER_MODULE = '''
import torch
from torch import nn


class Identity(nn.Module):
    """Returns its input: D(x_n) = x_n."""

    def forward(self, x):
        return x.clone()


class Brighter(nn.Module):
    """Breaks the range rule: output above 1."""

    def forward(self, x):
        return x + 0.5


class Crop(nn.Module):
    """Breaks the shape rule."""

    def forward(self, x):
        return x[..., 1:, :]


class NonBlind(nn.Module):
    """Needs the noise level, but is used bare."""

    non_blind = True

    def forward(self, x, sigma=None):
        return x
'''


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    """A user's repository: a package `my_denoisers` and a config folder `my_configs`."""
    (tmp_path / "my_denoisers.py").write_text(USER_MODULE)
    group = tmp_path / "my_configs" / "denoiser"
    group.mkdir(parents=True)
    for name in ("Identity", "Brighter", "Crop", "NonBlind"):
        (group / f"my_{name.lower()}.yaml").write_text(f"_target_: my_denoisers.{name}\n")
    return tmp_path


@pytest.mark.slow
def test_cli_finds_the_users_config_and_class(user_repo: Path) -> None:
    env = {**os.environ, "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(user_repo), str(REPO)])
    args = [
        f"hydra.searchpath=[file://{user_repo / 'my_configs'}]",
        "denoiser=my_identity",
        "dataset=demo_small",
        "attack.steps=1",
        "logger=none",
    ]
    run = run_miga(*args, cwd=user_repo, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    (summary_file,) = (user_repo / "outputs").glob("miga_my_identity_demo_small/*/summary.json")
    summary = json.loads(summary_file.read_text())
    # The identity "denoiser" returns x_n (clipped to [0,1] by the noise): D(x_n) scores as x_n.
    assert summary["psnr_denoised"] == pytest.approx(summary["psnr_noisy"], abs=1e-4)
    assert summary["n_images"] == 6


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("my_brighter", "output must lie in [0,1]"),
        ("my_crop", "maps (B,3,H,W) to the same shape"),
        ("my_nonblind", "non_blind = True"),
    ],
)
def test_a_broken_contract_stops_the_cell_naming_target_and_rule(
    user_repo: Path, monkeypatch: pytest.MonkeyPatch, name: str, rule: str
) -> None:
    monkeypatch.syspath_prepend(str(user_repo))
    cfg = compose_cell([f"denoiser={name}", "dataset=demo_small"], [user_repo / "my_configs"])
    with pytest.raises(ContractError) as err:
        build(cfg)
    message = str(err.value)
    target = {"my_brighter": "Brighter", "my_crop": "Crop", "my_nonblind": "NonBlind"}[name]
    assert message.startswith(f"denoiser (_target_: my_denoisers.{target}) breaks")
    assert rule in message


def test_the_shipped_groups_meet_their_contracts() -> None:
    """The demo's own denoiser, classifier and dataset pass the checks they impose on users."""
    from hydra.utils import instantiate

    from miga.contracts import check_cell, config_targets

    cfg = compose_cell(["dataset=demo_small"])
    check_cell(build(cfg), instantiate(cfg.dataset), config_targets(cfg))


def test_dataset_contract_names_the_missing_key() -> None:
    from torch.utils.data import Dataset

    from miga.contracts import check_dataset

    class NoIndex(Dataset):
        def __len__(self) -> int:
            return 1

        def __getitem__(self, i: int) -> dict:
            import torch

            return {"image": torch.zeros(3, 8, 8)}

    with pytest.raises(ContractError, match=r"dataset \(_target_: my\.Data\) .*`index`"):
        check_dataset(NoIndex(), "my.Data")
