"""LPIPS (Zhang et al. 2018), the learned perceptual distance, as an opt-in scorer.

LPIPS needs ImageNet backbone weights that torchmetrics downloads at construction; offline it
only runs from a local weights file (`metrics.lpips_checkpoint`). Columns: docs/metrics.md.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from miga.checkpoints import read_checkpoint
from miga.metrics.scorers import Columns, Outcome, Scorer

log = logging.getLogger(__name__)


def load_lpips(
    checkpoint: str | Path, net: Literal["alex", "vgg", "squeeze"] = "alex"
) -> nn.Module:
    """torchmetrics' LPIPS network with its ImageNet backbone loaded from a local file.

    `checkpoint` is the torchvision state dict of the backbone (alexnet, vgg16 or
    squeezenet1_1, e.g. `alexnet-owt-7be5be79.pth`); the LPIPS linear heads ship inside
    torchmetrics. Raises FileNotFoundError with the way out when the file is absent; the file is
    read as data by `miga.checkpoints.read_checkpoint` (a file that would run code is refused).
    """
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(
            f"LPIPS backbone weights not found at {path}: LPIPS needs the torchvision "
            f"ImageNet state dict of its '{net}' backbone as a local file (torchmetrics would "
            "download it, which fails offline). Copy it there, or set "
            "metrics.lpips_checkpoint=null to skip LPIPS."
        )
    state = read_checkpoint(path)
    model = _NoTrainLpips(pretrained=True, net=net, pnet_rand=True)
    mapped = {}
    for slice_name, block in model.net.named_children():
        for position, _ in block.named_children():
            for param in ("weight", "bias"):
                key = f"features.{position}.{param}"
                if key in state:
                    mapped[f"{slice_name}.{position}.{param}"] = state[key]
    expected = {name for name, _ in model.net.named_parameters()}
    missing = expected - set(mapped)
    if missing:
        raise ValueError(f"{path} is not a torchvision '{net}' state dict: lacks {sorted(missing)}")
    model.net.load_state_dict(mapped)
    return model.requires_grad_(False).eval()


class LPIPS(Scorer):
    """LPIPS of D(x_n+δ) vs x and vs D(x_n) (lower = more alike), opt-in.

    `checkpoint` null: the scorer adds no columns and says so once in the log. A path that
    does not exist raises (see `load_lpips`).
    """

    def __init__(
        self, checkpoint: str | None = None, net: Literal["alex", "vgg", "squeeze"] = "alex"
    ) -> None:
        self.model = load_lpips(checkpoint, net) if checkpoint else None
        if self.model is None:
            log.info(
                "LPIPS skipped: no local backbone weights configured "
                "(set metrics.lpips_checkpoint=<torchvision %s state dict>)",
                net,
            )

    @torch.no_grad()
    def __call__(self, o: Outcome) -> Columns:
        if self.model is None:
            return {}
        self.model.to(o.attacked.device)

        def lpips(a: Tensor, b: Tensor) -> Tensor:
            return self.model(a.clamp(0, 1), b.clamp(0, 1), normalize=True).flatten()

        return {
            "lpips_attacked": lpips(o.attacked, o.clean),
            "lpips_attacked_vs_denoised": lpips(o.attacked, o.denoised),
        }
