"""Frozen feature extractors.

A timm backbone as an embedding model (the `feature_similarity` downstream): unknown-task cells
have no labels, so how far the attack moved the semantics of D(x_n+δ) is measured as the cosine
similarity of its embedding to the clean image's and to the reference's. Any timm backbone
whose weights the user has locally will do.

VGG16's `features` stack (`VGG16Features`): the MIGA authors' perceptual loss terms
(`attack.features`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from miga.checkpoints import CheckpointError, read_checkpoint, state_dict_mismatch
from miga.downstream.classifier import Classifier
from miga.downstream.timm_models import data_config, timm_net


class FeatureExtractor(Classifier):
    """Frozen: resize → normalise → backbone → pooled embedding (B, D).

    A `Classifier` whose network ends at the pooled features (its head removed): the same
    preprocessing, and the same promise to stay frozen, as the downstream models.
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


#: The file name torchvision gives its ImageNet VGG16 weights (`VGG16_Weights.IMAGENET1K_V1`).
VGG16_FILE = "vgg16-397923af.pth"


def default_vgg16_path() -> Path:
    """Where torchvision keeps VGG16 once downloaded: `$TORCH_HOME/hub/checkpoints/<file>`."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE


class VGG16Features(nn.Module):
    """VGG16's convolutional `features` stack, frozen, for the MIGA authors' perceptual terms.

    The authors' scripts compare images through torchvision's ImageNet VGG16 on raw [0,1]
    input (no ImageNet normalisation): the known task through the whole `features` stack (one
    tensor, `layers=None`), the unknown task through the outputs of layers 4, 9 and 16 (the
    first three max-pools, `layers=[4, 9, 16]`: a list, whose per-layer MSEs the loss sums).

    The weights are the user's own torchvision file, never downloaded: `path`, or torchvision's
    cache `$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth` when None. Its `features.*` tensors
    are loaded strictly through `miga.checkpoints`; its `classifier.*` tensors are not used.
    """

    def __init__(self, path: str | Path | None = None, layers: Sequence[int] | None = None) -> None:
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        self.features = make_layers(cfgs["D"])  # the layers of torchvision's vgg16().features
        self.layers = None if layers is None else [int(i) for i in layers]
        if self.layers is not None:
            bad = [i for i in self.layers if not 0 <= i < len(self.features)]
            if bad or not self.layers:
                raise ValueError(
                    f"VGG16Features layers must be indices 0..{len(self.features) - 1} of "
                    f"vgg16().features, got {list(layers)}"
                )
        self._load(Path(path) if path is not None else None)
        self.requires_grad_(False).eval()

    def _load(self, path: Path | None) -> None:
        where = path if path is not None else default_vgg16_path()
        if not where.is_file():
            looked = (
                f"{where} (attack.features.path)"
                if path is not None
                else f"{where} (torchvision's cache, $TORCH_HOME/hub/checkpoints)"
            )
            raise CheckpointError(
                f"VGG16 weights not found: looked for {looked}. Nothing is downloaded: put "
                f"torchvision's {VGG16_FILE} there or set attack.features.path=<file>, or "
                "attack.features=null to run without the perceptual terms."
            )
        state = read_checkpoint(where)
        features = {
            k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")
        }
        others = [k for k in state if not k.startswith(("features.", "classifier."))]
        mismatch = state_dict_mismatch(features, self.features.state_dict(), owner="VGG16")
        if others or mismatch:
            raise CheckpointError(
                f"{where} is not torchvision's VGG16 layout (features.* and classifier.*): "
                f"{mismatch or ''} other keys {others[:5]}"
            )
        self.features.load_state_dict(features, strict=True)

    def train(self, mode: bool = True) -> VGG16Features:
        """Stay in eval mode: a frozen feature extractor."""
        return super().train(False)

    def forward(self, image: Tensor) -> Tensor | list[Tensor]:
        if self.layers is None:
            return self.features(image)
        wanted, outputs, last = set(self.layers), {}, max(self.layers)
        for index, layer in enumerate(self.features):
            image = layer(image)
            if index in wanted:
                outputs[index] = image
            if index == last:
                break
        return [outputs[i] for i in self.layers]
