"""A frozen timm backbone as an embedding model (the `feature_similarity` downstream).

Unknown-task cells have no labels: how far the attack moved the semantics of D(x_n+δ) is
measured as the cosine similarity of its embedding to the clean image's and to the reference's.
Any timm backbone whose weights the user has locally will do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from miga.downstream.classifier import Classifier
from miga.downstream.timm_models import data_config, timm_net


class FeatureExtractor(Classifier):
    """Frozen: resize → normalise → backbone → pooled embedding (B, D).

    A `Classifier` whose network ends at the pooled features (its head removed): the same
    preprocessing, and the same promise to stay frozen, as the task models.
    """

    def forward(self, image: Tensor) -> Tensor:
        return super().forward(image).flatten(1)


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
