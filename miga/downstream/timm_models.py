"""Any timm model as a downstream model, its weights read from a local file.

The file is read as data by the project's one loader (`miga.checkpoints.read_checkpoint`: a file
that would run code is refused) and handed to timm's pretrained loading as a state dict
(`pretrained_cfg_overlay=dict(state_dict=...)`), so a file from the Hugging Face hub
(`model.safetensors`, `pytorch_model.bin`), a timm training checkpoint (`state_dict_ema` preferred,
as timm does, else `state_dict`) or a plain state dict all load, with the model's own checkpoint
filter applied, and nothing is downloaded. Loading is strict: the file must fit the
architecture and its number of classes exactly, and a missing or unfitting file raises
`CheckpointError` naming the file. `checkpoint=None` builds random weights with a warning.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from miga.checkpoints import CheckpointError, file_sha256, read_checkpoint
from miga.downstream.classifier import Classifier

log = logging.getLogger(__name__)

#: Where a timm training checkpoint keeps its weights, in the order timm's `load_state_dict` tries.
TIMM_WRAPPER_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model")


def timm_net(
    model_name: str,
    checkpoint: str | Path | None,
    num_classes: int | None = None,
    adapt_head: bool = False,
    **model_kwargs: Any,
) -> nn.Module:
    """`timm.create_model(model_name)` with weights from the local file `checkpoint`.

    `num_classes` None keeps the architecture's default (1000 for ImageNet models).
    `adapt_head=True` is for fine-tuning: the file's classifier is dropped when its class count
    differs from `num_classes` (timm's usual fine-tuning start); every other tensor must load.
    """
    kwargs = dict(model_kwargs)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if checkpoint is None:
        warnings.warn(f"timm '{model_name}': checkpoint=null, using RANDOM weights", stacklevel=2)
        return timm.create_model(model_name, pretrained=False, **kwargs)
    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path}. Put the weights of timm '{model_name}' there (a "
            f"safetensors/bin file from the hub, a timm checkpoint or a plain state dict), set "
            f"the config key `checkpoint` to its location, or `checkpoint=null` for random weights"
        )
    state = read_checkpoint(path, wrapper_keys=TIMM_WRAPPER_KEYS)
    overlay: dict[str, Any] = {"state_dict": dict(state)}  # a copy: timm may pop the head
    if num_classes is not None and not adapt_head:
        overlay["num_classes"] = num_classes  # file and model agree → timm loads strictly
    try:
        net = timm.create_model(
            model_name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs
        )
    except Exception as err:  # torch/timm raise RuntimeError, KeyError, … by failure
        classes = "" if num_classes is None else f" with num_classes={num_classes}"
        raise CheckpointError(f"{path} does not fit timm '{model_name}'{classes}: {err}") from err
    # timm keeps the overlay in `pretrained_cfg`: drop the file's tensors (the model holds its own
    # copy) and record where they came from instead.
    net.pretrained_cfg.pop("state_dict", None)
    net.pretrained_cfg["file"] = str(path)
    if adapt_head:
        _check_backbone_loaded(net, state, path, model_name)
    log.info("loaded timm %s from %s (sha256 %s)", model_name, path, file_sha256(path)[:12])
    return net


def _check_backbone_loaded(
    net: nn.Module, state: dict[str, torch.Tensor], path: Path, model_name: str
) -> None:
    """With the head adapted timm loads non-strictly: check every other tensor was in the file."""
    head = tuple(net.pretrained_cfg.get("classifier") or ())
    head = (head,) if isinstance(head, str) else head
    missing = [
        key
        for key in net.state_dict()
        if key not in state
        and not key.endswith("num_batches_tracked")
        and not key.startswith(tuple(f"{h}." for h in head))
    ]
    if missing:
        raise CheckpointError(
            f"{path}: {len(missing)} tensors of timm '{model_name}' are not in the file "
            f"(first: {missing[:5]}); only the classifier may be re-initialised"
        )


def timm_downstream(
    model_name: str,
    checkpoint: str | Path | None,
    num_classes: int | None = None,
    input_size: int | None = None,
    class_names: Sequence[str] | None = None,
    **model_kwargs: Any,
) -> Classifier:
    """A frozen timm classifier that takes [0,1] RGB and normalises as the model was trained.

    `input_size` None resizes inputs to the model's native size (timm's `resolve_data_config`);
    give an int to choose another square size.
    """
    net = timm_net(model_name, checkpoint, num_classes, **model_kwargs)
    config = data_config(net)
    size = input_size if input_size is not None else int(config["input_size"][-1])
    return Classifier(net, config["mean"], config["std"], input_size=size, class_names=class_names)


def data_config(net: nn.Module) -> dict[str, Any]:
    """timm's preprocessing facts of `net` (mean, std, input size, interpolation, crop)."""
    return timm.data.resolve_data_config({}, model=net)


def normalisation(net: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) of `net` as (1,3,1,1) tensors."""
    config = data_config(net)
    return (
        torch.tensor(config["mean"]).view(1, -1, 1, 1),
        torch.tensor(config["std"]).view(1, -1, 1, 1),
    )
