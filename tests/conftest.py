"""Shared fixtures: composed configs, the demo models, small batches."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from miga.utils import config as _config  # noqa: F401  (registers resolvers)

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"

os.environ.setdefault("WANDB_SILENT", "true")
# Under pytest-xdist (`make test` runs one worker per core) each worker, and every `miga.run` it
# starts (they inherit the environment), computes on one thread: the workers share the cores
# instead of oversubscribing them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
else:
    torch.set_num_threads(min(2, os.cpu_count() or 1))


#: The running test's own output folder (set per test below); None outside a test.
_test_output_dir: Path | None = None


@pytest.fixture(autouse=True)
def _own_output_dir(tmp_path: Path):
    """Every test's composed configs write under its own temporary folder, never the checkout."""
    global _test_output_dir
    _test_output_dir = tmp_path / "outputs"
    yield
    _test_output_dir = None


def compose_config(
    overrides: list[str] | None = None, name: str = "config", output_dir: Path | None = None
) -> DictConfig:
    """Compose a real config like `python -m miga.run` would, outside a Hydra run.

    `paths.output_dir` is `output_dir`, else the running test's own temporary folder, else (a
    session fixture composing before any test) a fresh temporary folder: no test writes into
    the checkout.
    """
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=name, overrides=overrides or [], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # so `${hydra:...}` interpolations resolve
    with open_dict(cfg):
        cfg.paths.root = str(REPO)
        where = output_dir or _test_output_dir or tempfile.mkdtemp(prefix="miga-pytest-")
        cfg.paths.output_dir = str(where)
    return cfg


@pytest.fixture(scope="session")
def demo_models():
    """The demo denoiser (committed weights) and the demo classifier, loaded once."""
    from hydra.utils import instantiate

    cfg = compose_config()
    return instantiate(cfg.denoiser), instantiate(cfg.downstream)


@pytest.fixture(scope="session")
def demo_batch():
    """All demo photos as one batch (x, labels, indices)."""
    from miga.data.demo_photos import DemoPhotos

    photos = DemoPhotos(size=128)
    items = [photos[i] for i in range(len(photos))]
    return (
        torch.stack([item["image"] for item in items]),
        torch.tensor([item["label"] for item in items]),
        torch.tensor([item["index"] for item in items]),
    )


def attack_knobs(name: str, *keys: str) -> dict:
    """Settings of conf/attack/<name>.yaml (their one home), for tests that build an attack
    class directly: e.g. MIGA's paper weights, `attack_knobs("miga", "lambda_mi", ...)`."""
    from omegaconf import OmegaConf

    node = OmegaConf.load(CONF / "attack" / f"{name}.yaml")
    return {key: node[key] for key in keys}


#: MIGA's paper weights and fidelity settings, as conf/attack/miga.yaml sets them.
MIGA_KNOBS = ("lambda_rec", "lambda_pert", "lambda_reg", "lambda_mi", "rec_target")
MIGA_KNOBS += ("perceptual_weight",)
