"""DnCNN (Zhang et al., TIP 2017) with the parameter layout of the KAIR model zoo.

The released files hold a flat `nn.Sequential` named `model`: conv, ReLU, conv, ReLU, …, conv,
batch-norm already folded into the convolutions, so conv `i` is `model.{2i}`. The network
predicts the noise; the output is `input − noise` (residual learning).
"""

from __future__ import annotations

from torch import Tensor, nn


class DnCNN(nn.Module):
    """Residual denoiser: `nb` 3×3 convolutions of width `nc`, ReLU between them."""

    def __init__(self, in_nc: int = 3, out_nc: int = 3, nc: int = 64, nb: int = 20) -> None:
        super().__init__()
        if nb < 2:
            raise ValueError(f"DnCNN needs nb >= 2 convolutions, got {nb}")
        layers: list[nn.Module] = [nn.Conv2d(in_nc, nc, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(nb - 2):
            layers += [nn.Conv2d(nc, nc, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(nc, out_nc, 3, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x - self.model(x)
