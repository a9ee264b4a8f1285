"""A frozen timm backbone as an embedding model (the `feature_similarity` downstream).

Unknown-task cells have no labels: how far the attack moved the semantics of D(x_n+δ) is
measured as the cosine similarity of its embedding to the clean image's and to the reference's.
Any timm backbone whose weights the user has locally will do.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miga.downstream.timm_models import data_config, timm_net


class FeatureExtractor(nn.Module):
    """Frozen: resize → normalise → backbone → pooled embedding (B, D)."""

    def __init__(
        self,
        net: nn.Module,
        mean: Sequence[float],
        std: Sequence[float],
        input_size: int | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.input_size = input_size
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> FeatureExtractor:
        """Stay in eval mode whatever Lightning asks (frozen normalisation statistics)."""
        return super().train(False)

    def forward(self, image: Tensor) -> Tensor:
        if self.input_size is not None and image.shape[-2:] != (self.input_size,) * 2:
            image = F.interpolate(
                image, size=(self.input_size,) * 2, mode="bilinear", antialias=True
            )
        return self.net((image - self.mean) / self.std).flatten(1)


def timm_features(
    model_name: str,
    checkpoint: str | Path | None,
    num_classes: int | None = None,
    input_size: int | None = None,
    **model_kwargs: Any,
) -> FeatureExtractor:
    """A timm model's pooled pre-classifier embedding, weights loaded strictly from `checkpoint`.

    The file is loaded into the full model (its classifier included, `num_classes` as in the
    file: None for the architecture's default, 0 for a headless backbone checkpoint), then the
    classifier is removed. `input_size` None: the model's native size.
    """
    net = timm_net(model_name, checkpoint, num_classes, **model_kwargs)
    net.reset_classifier(0)
    config = data_config(net)
    size = input_size if input_size is not None else int(config["input_size"][-1])
    return FeatureExtractor(net, config["mean"], config["std"], input_size=size)
