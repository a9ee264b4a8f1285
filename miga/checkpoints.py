"""Reading weight files, for every model of the project: denoisers, classifiers, MI critics, LPIPS.

One loader for every architecture (timm's `build_model_with_cfg` idea): the modules reproduce the
official parameter names, this file unwraps the release's container and loads with
`strict=True`, and every failure names the file, the expected variant and the first offending keys.
It also fingerprints files (`file_sha256`) for the provenance record.

It is also the only place in the package that deserialises a weight file (a test reads the
package's sources to hold that), because weight files are what researchers exchange: a file a
user points at is data and must never run code. `read_weight_file` therefore

- reads `.safetensors` with safetensors (tensors only, by construction);
- reads every other file with `torch.load(weights_only=True)`, whose unpickler builds tensors,
  containers and primitives only, plus `LIGHTNING_SAFE_GLOBALS`: the types a Lightning or timm
  training checkpoint holds beside its tensors (OmegaConf hyper-parameters, argparse.Namespace);
- refuses anything else with `UnsafeCheckpointError` naming the file and the globals it met
  (listed without executing them) — nothing in the file runs; there is no fallback to a full load.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import logging
import re
import typing
import warnings
from pathlib import Path

import omegaconf
import omegaconf.base
import omegaconf.nodes
import torch
from torch import nn

log = logging.getLogger(__name__)

#: Wrapper keys used by the official releases (BasicSR: params / params_ema; others).
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model")


#: What a weight file's pickle may name beside tensors: the types Lightning checkpoints hold in
#: `hyper_parameters` (OmegaConf containers and their metadata, which name plain builtin types as
#: `ref_type`/`object_type`) and timm training checkpoints in `args`. Each only rebuilds data;
#: none runs code the file chooses. Structured configs (dataclasses), enums and paths are refused.
LIGHTNING_SAFE_GLOBALS: tuple[object, ...] = (
    omegaconf.DictConfig,
    omegaconf.ListConfig,
    omegaconf.base.ContainerMetadata,
    omegaconf.base.Metadata,
    omegaconf.nodes.AnyNode,
    omegaconf.nodes.StringNode,
    omegaconf.nodes.IntegerNode,
    omegaconf.nodes.FloatNode,
    omegaconf.nodes.BooleanNode,
    omegaconf.nodes.BytesNode,
    typing.Any,
    collections.defaultdict,
    collections.OrderedDict,
    dict,
    list,
    tuple,
    set,
    int,
    float,
    str,
    bool,
    bytes,
    argparse.Namespace,
)


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or of another architecture/variant."""


class UnsafeCheckpointError(CheckpointError):
    """A weight file whose pickle names a type outside the allowlist: refused, nothing executed."""


def unwrap_state_dict(
    obj: object,
    path: Path,
    weight_key: str | None = None,
    wrapper_keys: tuple[str, ...] = WRAPPER_KEYS,
) -> dict[str, torch.Tensor]:
    """Return the bare state dict inside an official container, with `module.` stripped.

    `weight_key` names the entry the official test loader reads (Restormer, NAFNet and SwinIR's
    colour-denoising scripts read `params`, not `params_ema`); without it the first of
    `wrapper_keys` found is taken (timm's loader prefers `state_dict_ema`: its callers pass their
    own order). A bare state dict is accepted either way.
    """
    if weight_key is not None and isinstance(obj, dict) and not _is_state_dict(obj):
        if weight_key not in obj:
            raise CheckpointError(
                f"{path}: no '{weight_key}' entry (the denoiser config's `weight_key`); "
                f"top-level keys are {sorted(obj)[:8]}"
            )
        obj = obj[weight_key]
    while isinstance(obj, dict) and not _is_state_dict(obj):
        key = next((k for k in wrapper_keys if k in obj), None)
        if key is None:
            raise CheckpointError(
                f"{path}: no state dict found; top-level keys are {sorted(obj)[:8]}, "
                f"expected a bare state dict or one of the wrappers {wrapper_keys}"
            )
        obj = obj[key]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a state dict, found {type(obj).__name__}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _is_state_dict(obj: dict) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def read_weight_file(path: str | Path) -> object:
    """The object stored in a weight file, read as data only (see the module docstring).

    `.safetensors` files give their tensor dict; other files go through `torch.load` with
    `weights_only=True` and `LIGHTNING_SAFE_GLOBALS`. A file naming any other type raises
    `UnsafeCheckpointError` with the file and those types; a missing, truncated or foreign file
    raises `CheckpointError` naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path}. Put the official file there or set the config key "
            f"to its location (or `checkpoint=null` for random weights in smoke tests)."
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as err:  # safetensors raises its own error types for bad headers
            raise CheckpointError(f"{path}: cannot be read as a safetensors file ({err})") from err
    try:
        with torch.serialization.safe_globals(list(LIGHTNING_SAFE_GLOBALS)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated/corrupt files
        unsafe = unsafe_globals(path, err)
        if unsafe:
            raise UnsafeCheckpointError(
                f"{path}: refused, the file pickles {', '.join(unsafe)}, which a weight file has "
                f"no reason to hold and whose unpickling can run code; nothing in it was "
                f"executed. miga reads weight files as data only (tensors, containers, numbers "
                f"and Lightning's OmegaConf hyper-parameters). If the file is yours, re-save its "
                f"weights alone: torch.save(checkpoint['state_dict'], 'weights.pt')"
            ) from err
        raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({err})") from err


def unsafe_globals(path: Path, err: BaseException) -> list[str]:
    """The globals of `path` outside torch's and miga's allowlists, found without executing them.

    torch lists a zip checkpoint's globals by scanning its pickle opcodes; for the legacy
    (non-zip) format the unpickler's message names the first global it refused.
    """
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in LIGHTNING_SAFE_GLOBALS}
    allowed |= {"typing.Any"}
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip file: fall back to the unpickler's message
        found = re.findall(r"GLOBAL ([\w.]+)", str(err))
    return sorted({name for name in found if name not in allowed})


def read_checkpoint(
    path: str | Path, weight_key: str | None = None, wrapper_keys: tuple[str, ...] = WRAPPER_KEYS
) -> dict[str, torch.Tensor]:
    """Read a weight file as data (`read_weight_file`) and unwrap it (`unwrap_state_dict`)."""
    path = Path(path)
    return unwrap_state_dict(read_weight_file(path), path, weight_key, wrapper_keys)


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
