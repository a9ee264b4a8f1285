"""Reading weight files, for every model of the project: denoisers, classifiers, MI critics.

One loader for every architecture (timm's `build_model_with_cfg` idea): the modules reproduce the
official parameter names, this file unwraps the release's container and loads with
`strict=True`, and every failure names the file, the expected variant and the first offending keys.
It also fingerprints files (`file_sha256`) for the provenance record.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

#: Wrapper keys used by the official releases (BasicSR: params / params_ema; others).
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model")


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or of another architecture/variant."""


def unwrap_state_dict(
    obj: object, path: Path, weight_key: str | None = None
) -> dict[str, torch.Tensor]:
    """Return the bare state dict inside an official container, with `module.` stripped.

    `weight_key` names the entry the official test loader reads (Restormer, NAFNet and SwinIR's
    colour-denoising scripts read `params`, not `params_ema`); without it the first of
    `WRAPPER_KEYS` found is taken. A bare state dict is accepted either way.
    """
    if weight_key is not None and isinstance(obj, dict) and not _is_state_dict(obj):
        if weight_key not in obj:
            raise CheckpointError(
                f"{path}: no '{weight_key}' entry (the denoiser config's `weight_key`); "
                f"top-level keys are {sorted(obj)[:8]}"
            )
        obj = obj[weight_key]
    while isinstance(obj, dict) and not _is_state_dict(obj):
        key = next((k for k in WRAPPER_KEYS if k in obj), None)
        if key is None:
            raise CheckpointError(
                f"{path}: no state dict found; top-level keys are {sorted(obj)[:8]}, "
                f"expected a bare state dict or one of the wrappers {WRAPPER_KEYS}"
            )
        obj = obj[key]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a state dict, found {type(obj).__name__}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _is_state_dict(obj: dict) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def read_checkpoint(path: str | Path, weight_key: str | None = None) -> dict[str, torch.Tensor]:
    """Read a checkpoint file safely (`weights_only=True`) and unwrap it (`unwrap_state_dict`)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path}. Put the official file there or set the config key "
            f"to its location (or `checkpoint=null` for random weights in smoke tests)."
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated/corrupt files
        raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({err})") from err
    return unwrap_state_dict(obj, path, weight_key)


def load_checkpoint(
    model: nn.Module, path: str | Path | None, variant: str, weight_key: str | None = None
) -> nn.Module:
    """Load `path` into `model` strictly; `None` keeps random weights with a warning.

    `variant` names what the config expects (e.g. "Restormer σ=50 colour") so that a wrong file
    produces an error a researcher can act on.
    """
    if path is None:
        if not any(True for _ in model.parameters()):
            return model  # weight-free (classical) model: nothing to load
        warnings.warn(f"{variant}: checkpoint=null, using RANDOM weights", stacklevel=2)
        return model
    state = read_checkpoint(path, weight_key)
    expected = model.state_dict()
    mismatch = state_dict_mismatch(state, expected, model=model)
    if mismatch:
        raise CheckpointError(
            f"{path} does not match {variant} ({len(expected)} keys expected, {len(state)} in "
            f"file): {mismatch}"
        )
    model.load_state_dict(state, strict=True)
    log.info("loaded %s from %s (sha256 %s)", variant, path, file_sha256(path)[:12])
    return model


def state_dict_mismatch(
    state: dict[str, torch.Tensor],
    expected: dict[str, torch.Tensor],
    owner: str = "model",
    model: nn.Module | None = None,
) -> str | None:
    """The first missing, unexpected and shape-mismatched keys, or None when `state` fits.

    With `model`, keys that `model.load_state_dict(state, strict=True)` fills in itself are not
    counted as missing, so this pre-check refuses exactly what torch's strict load refuses.
    """
    optional = tolerated_missing_keys(model, state) if model is not None else set()
    missing = [k for k in expected if k not in state and k not in optional]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs {owner} {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if not (missing or unexpected or mismatched):
        return None
    return f"missing {missing[:5]}, unexpected {unexpected[:5]}, shape mismatch {mismatched[:5]}"


def tolerated_missing_keys(model: nn.Module, state: dict[str, torch.Tensor]) -> set[str]:
    """Keys of `model` that a strict `load_state_dict(state)` does not require.

    Batch-norm layers gained `num_batches_tracked` in torch 0.4.1 (module version 2); for a file
    written before that (no `_metadata`, or version < 2 for that layer, e.g. FFDNet's released
    weights) torch's `_BatchNorm._load_from_state_dict` supplies the counter itself.
    """
    metadata = getattr(state, "_metadata", None) or {}
    tolerated = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            version = metadata.get(name, {}).get("version")
            if version is None or version < 2:
                tolerated.add(f"{name}.num_batches_tracked" if name else "num_batches_tracked")
    return tolerated


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a whole file, for results provenance."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
