"""NAFNet (Chen et al., ECCV 2022) with the parameter layout of the official release.

Written for this project from the paper and the release's parameter names
(megvii-research/NAFNet, class `NAFNet`, not the test-time-local `NAFNetLocal`): the module tree
reproduces those names and shapes so that `NAFNet-SIDD-width{32,64}.pth` load with `strict=True`
(664 keys and 115.98 M parameters at width 64).

A U-Net of "nonlinear activation free" blocks: the only nonlinearity is a gate that multiplies
two halves of the channels, plus a channel attention made of a global average and a 1×1
convolution. The network zero-pads its input to a multiple of 2**len(enc_blk_nums) itself,
adds the input back and crops, as the release does — so the `Denoiser` wrapper needs no padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miga.denoisers.recompute import RecomputedBlock


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of an NCHW map, with per-channel affine weight and bias.

    The release implements it as a custom autograd function to save memory; the forward
    arithmetic is the same, and autograd derives the same backward here.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        centred = x - x.mean(dim=1, keepdim=True)
        x = centred * torch.rsqrt(centred.pow(2).mean(dim=1, keepdim=True) + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them: NAFNet's only nonlinearity."""

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class NAFBlock(RecomputedBlock):
    """Two residual branches with learned, zero-initialised scales `beta` and `gamma`; the unit
    of checkpointing.

    Spatial branch: norm → 1×1 expand → 3×3 depth-wise → gate → channel attention (`sca`) →
    1×1 project. Channel branch: norm → 1×1 expand → gate → 1×1 project. Zero-initialised
    scales make a freshly built block the identity, which is why the release trains stably deep.
    """

    def __init__(
        self, channels: int, dw_expand: int = 2, ffn_expand: int = 2, drop_out_rate: float = 0.0
    ) -> None:
        super().__init__()
        dw = channels * dw_expand
        ffn = channels * ffn_expand
        self.conv1 = nn.Conv2d(channels, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, channels, 1)
        # Simplified channel attention; index 1 is the key name the checkpoints use.
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1))
        self.sg = SimpleGate()
        self.conv4 = nn.Conv2d(channels, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, channels, 1)
        self.norm1 = LayerNorm2d(channels)
        self.norm2 = LayerNorm2d(channels)
        self.dropout1 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.dropout2 = nn.Dropout(drop_out_rate) if drop_out_rate > 0 else nn.Identity()
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        h = self.sg(self.conv2(self.conv1(self.norm1(x))))
        h = self.dropout1(self.conv3(h * self.sca(h)))
        x = x + h * self.beta
        h = self.dropout2(self.conv5(self.sg(self.conv4(self.norm2(x)))))
        return x + h * self.gamma


class NAFNet(nn.Module):
    """NAFNet U-Net; argument names are the release's so configs read like its YAMLs.

    Each encoder level is a stack of blocks followed by a stride-2 2×2 convolution that doubles
    the channels; each decoder level upsamples with a bias-free 1×1 convolution and a
    pixel-shuffle, *adds* the skip (no concatenation) and runs its blocks.
    """

    def __init__(
        self,
        img_channel: int = 3,
        width: int = 16,
        middle_blk_num: int = 1,
        enc_blk_nums: tuple[int, ...] | list[int] = (),
        dec_blk_nums: tuple[int, ...] | list[int] = (),
        DW_Expand: int = 2,  # the release's spelling, kept for its configs
        FFN_Expand: int = 2,
        drop_out_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise ValueError("enc_blk_nums and dec_blk_nums need the same number of levels")
        block = {"dw_expand": DW_Expand, "ffn_expand": FFN_Expand, "drop_out_rate": drop_out_rate}
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()

        chan = width
        for num in enc_blk_nums:
            self.encoders.append(nn.Sequential(*(NAFBlock(chan, **block) for _ in range(num))))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, stride=2))
            chan *= 2
        self.middle_blks = nn.Sequential(*(NAFBlock(chan, **block) for _ in range(middle_blk_num)))
        for num in dec_blk_nums:
            self.ups.append(
                nn.Sequential(nn.Conv2d(chan, 2 * chan, 1, bias=False), nn.PixelShuffle(2))
            )
            chan //= 2
            self.decoders.append(nn.Sequential(*(NAFBlock(chan, **block) for _ in range(num))))
        self.padder_size = 2 ** len(enc_blk_nums)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        m = self.padder_size
        x = F.pad(x, (0, (-w) % m, 0, (-h) % m))  # zeros, as the release pads
        feat = self.intro(x)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            feat = encoder(feat)
            skips.append(feat)
            feat = down(feat)
        feat = self.middle_blks(feat)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips), strict=True):
            feat = decoder(up(feat) + skip)
        return (self.ending(feat) + x)[..., :h, :w]
