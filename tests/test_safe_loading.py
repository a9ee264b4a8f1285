"""No file a user points at can run code: every weight file goes through `miga.checkpoints`.

Each entry point (denoiser, downstream classifier, critic, held-out critic, LPIPS) is fed a crafted
file whose unpickling would create a marker file (its payload is checked to be live: a full
`torch.load` does create it). Through miga the marker never appears and the error names the file
and the global it met. A real Lightning checkpoint (OmegaConf hyper-parameters) still loads, and
the package's sources hold no other deserialising call.
"""

from __future__ import annotations

import ast
import pathlib
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

import miga
from miga.checkpoints import (
    CheckpointError,
    UnsafeCheckpointError,
    read_checkpoint,
    read_weight_file,
)
from miga.downstream.classifier import timm_classifier
from miga.mi.critics import MLPCritic
from miga.mi.estimators import MINE
from tests.conftest import REPO, compose_config

DEMO_DNCNN = Path(miga.__file__).parent / "zoo" / "weights" / "demo_dncnn.pt"


class _Payload:
    """Unpickles to `marker.touch()`: a harmless stand-in for `os.system(...)`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (pathlib.Path.touch, (self.marker,))


@pytest.fixture(params=["bare", "lightning"])
def crafted(request, tmp_path) -> tuple[Path, Path]:  # noqa: ANN001
    """(crafted file, marker its unpickling would create): a bare payload, or a Lightning-style
    dict with real weights whose `hyper_parameters` carry the payload (the issue's critic.pt)."""
    marker = tmp_path / "pwned"
    path = tmp_path / f"{request.param}.pt"
    if request.param == "bare":
        torch.save(_Payload(marker), path)
    else:
        weights = read_checkpoint(DEMO_DNCNN)
        torch.save({"state_dict": weights, "epoch": 3, "hyper_parameters": _Payload(marker)}, path)
    return path, marker


def refusal(call) -> CheckpointError:  # noqa: ANN001
    """The CheckpointError that `call()` raises, found under Hydra's wrapping."""
    with pytest.raises(Exception) as info:
        call()
    error: BaseException | None = info.value
    while error is not None and not isinstance(error, CheckpointError):
        error = error.__cause__
    assert error is not None, f"no CheckpointError in {info.value!r}"
    return error


def assert_refused(error: CheckpointError, path: Path, marker: Path) -> None:
    message = str(error)
    assert message.startswith(f"{path}: refused"), message
    assert "getattr" in message  # the global the payload needs, named without running it
    assert not marker.exists()


def test_the_crafted_payload_is_live(crafted) -> None:  # noqa: ANN001
    """Guard for the tests below: an unrestricted load of the file does run its payload."""
    path, marker = crafted
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_denoiser_refuses_it(crafted) -> None:  # noqa: ANN001
    path, marker = crafted
    cfg = compose_config([f"denoiser.checkpoint={path}"])
    assert_refused(refusal(lambda: instantiate(cfg.denoiser)), path, marker)


def test_downstream_classifiers_refuse_it(crafted) -> None:  # noqa: ANN001
    path, marker = crafted
    cfg = compose_config(["downstream=resnet50_in10", f"downstream.checkpoint={path}"])
    assert_refused(refusal(lambda: instantiate(cfg.downstream)), path, marker)
    # The loader of the wheel-shipped classifiers (downstream=demo), pointed at the file.
    assert_refused(refusal(lambda: timm_classifier("resnet18", path)), path, marker)


def test_critic_refuses_it(crafted) -> None:  # noqa: ANN001
    path, marker = crafted
    cfg = compose_config(["task=demo_text", f"mi_estimator.checkpoint={path}"])
    assert_refused(refusal(lambda: instantiate(cfg.mi_estimator)), path, marker)


def test_heldout_critic_refuses_it(crafted) -> None:  # noqa: ANN001
    path, marker = crafted
    cfg = compose_config(["task=demo_text", f"metrics.heldout_critic.checkpoint={path}"])
    assert_refused(refusal(lambda: instantiate(cfg.metrics.scorers.heldout_critic)), path, marker)


def test_lpips_refuses_it(crafted) -> None:  # noqa: ANN001
    path, marker = crafted
    cfg = compose_config([f"metrics.lpips_checkpoint={path}"])
    assert_refused(refusal(lambda: instantiate(cfg.metrics.scorers.lpips)), path, marker)


def test_legacy_format_is_refused_too(tmp_path) -> None:  # noqa: ANN001
    """Pre-1.6 (non-zip) files are not scanned by torch: the unpickler's refusal is named."""
    marker, path = tmp_path / "pwned", tmp_path / "legacy.pt"
    torch.save(_Payload(marker), path, _use_new_zipfile_serialization=False)
    error = refusal(lambda: read_weight_file(path))
    assert isinstance(error, UnsafeCheckpointError)
    assert_refused(error, path, marker)


class _CriticModule(L.LightningModule):
    """A Lightning module holding a critic, with OmegaConf hyper-parameters, as users train."""

    def __init__(self, cfg, lr: float = 1e-3, names: tuple = ("a", "b")) -> None:  # noqa: ANN001
        super().__init__()
        self.save_hyperparameters()
        self.estimator = MINE(MLPCritic(2, 2, hidden=4))

    def training_step(self, batch, index):  # noqa: ANN001, ANN201
        a, b = batch[0][:, :2], batch[0][:, 2:]
        return -self.estimator.critic(a, b).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def test_a_real_lightning_checkpoint_with_omegaconf_hparams_loads(tmp_path) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    cfg = OmegaConf.create(
        {"critic": {"hidden": 4, "mixed": [1, 2.5, None, True, "x"]}, "alias": "${critic.hidden}"}
    )
    module = _CriticModule(cfg)
    trainer = L.Trainer(
        max_steps=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=tmp_path,
    )
    trainer.fit(module, DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4))
    ckpt = tmp_path / "critic.ckpt"
    trainer.save_checkpoint(ckpt)
    # The file does hold OmegaConf nodes, which plain weights_only=True refuses.
    with pytest.raises(Exception, match="omegaconf"):
        torch.load(ckpt, weights_only=True)

    loaded = MINE(MLPCritic(2, 2, hidden=4), checkpoint=str(ckpt))  # prefix found by itself
    trained = module.estimator.critic.state_dict()
    for key, value in loaded.critic.state_dict().items():
        assert torch.equal(value, trained[key]), key
    assert isinstance(read_weight_file(ckpt)["hyper_parameters"]["cfg"].critic.hidden, int)


#: Calls that deserialise; only miga/checkpoints.py may make them (and only the safe way).
DESERIALISERS = {
    ("torch", "load"),
    ("jit", "load"),
    ("serialization", "load"),
    ("pickle", "load"),
    ("pickle", "loads"),
    ("pickle", "Unpickler"),
    ("np", "load"),
    ("numpy", "load"),
    ("yaml", "load"),
    ("yaml", "unsafe_load"),
    ("yaml", "full_load"),
    ("joblib", "load"),
    ("dill", "load"),
    ("dill", "loads"),
    ("cloudpickle", "loads"),
    ("marshal", "loads"),
}


def _deserialising_calls(source: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
            if (name, node.func.attr) in DESERIALISERS:
                found.append(f"{source.relative_to(REPO)}:{node.lineno} {name}.{node.func.attr}")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            modules.append(getattr(node, "module", None) or "")
            for module in modules:
                if module.split(".")[0] in {"pickle", "dill", "cloudpickle", "marshal", "shelve"}:
                    found.append(f"{source.relative_to(REPO)}:{node.lineno} import {module}")
    return found


def test_the_scanner_sees_a_deserialising_call() -> None:
    probe = REPO / "miga" / "checkpoints.py"
    assert any("torch.load" in hit for hit in _deserialising_calls(probe))


def test_no_deserialisation_outside_the_one_loader() -> None:
    loader = REPO / "miga" / "checkpoints.py"
    sources = [
        path
        for folder in ("miga", "benchmarks", "scripts")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path != loader
    ]
    assert len(sources) > 50
    offenders = [hit for path in sources for hit in _deserialising_calls(path)]
    assert offenders == []


def test_a_timm_training_checkpoint_loads_its_ema_weights(tmp_path) -> None:  # noqa: ANN001
    """timm's train.py files hold `args` (an argparse.Namespace, allowlisted) and both weights:
    the EMA ones are taken, as timm's own loader does."""
    import argparse

    import timm

    from miga.downstream.timm_models import timm_downstream

    torch.manual_seed(0)
    plain, ema = (timm.create_model("resnet18", num_classes=3) for _ in range(2))
    path = tmp_path / "train.pth.tar"
    torch.save(
        {
            "epoch": 7,
            "args": argparse.Namespace(lr=0.1, model="resnet18"),
            "state_dict": plain.state_dict(),
            "state_dict_ema": ema.state_dict(),
        },
        path,
    )
    net = timm_downstream("resnet18", path, num_classes=3).net
    assert torch.equal(net.fc.weight, ema.fc.weight)
    assert not torch.equal(net.fc.weight, plain.fc.weight)
    assert "state_dict" not in net.pretrained_cfg  # the file's tensors are not kept twice
