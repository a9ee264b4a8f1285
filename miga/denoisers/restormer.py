"""Restormer (Zamir et al., CVPR 2022) with the parameter layout of the official release.

Written for this project from the paper and the release's parameter names (swz30/Restormer):
the module tree reproduces those names and shapes so that the official `.pth` files load with
`strict=True` (406 keys, 26.11 M parameters for the denoising configuration, no buffers).

A four-level U-Net of transformer blocks whose attention runs across channels ("transposed"
attention: a C×C map per head, linear in the number of pixels), with a gated depth-wise FFN.
Denoising uses the bias-free LayerNorm; the network's output is added to its input (global
residual). H and W must be multiples of 8 (three 2× downsamplings): the `Denoiser` wrapper
reflect-pads to ×8 as the official test script does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miga.denoisers.recompute import RecomputedBlock

#: The two LayerNorm flavours of the release; denoising checkpoints use "BiasFree".
LAYER_NORM_TYPES = ("BiasFree", "WithBias")


class BiasFreeLayerNorm(nn.Module):
    """Scale by the channel std, without centring the output: `x / sqrt(var + eps) · w`.

    The variance is the centred one, but the numerator is *not* centred — a quirk of the
    release that the checkpoints were trained with, kept exactly.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        var = x.var(dim=1, keepdim=True, unbiased=False)
        return x * torch.rsqrt(var + self.eps) * self.weight[:, None, None]


class WithBiasLayerNorm(nn.Module):
    """Ordinary per-pixel LayerNorm over channels (the architecture's default flavour)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, keepdim=True, unbiased=False)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


class LayerNorm(nn.Module):
    """LayerNorm over the channels of an NCHW map; the norm lives in `body` (official key name)."""

    def __init__(self, channels: int, layer_norm_type: str) -> None:
        super().__init__()
        if layer_norm_type not in LAYER_NORM_TYPES:
            raise ValueError(
                f"LayerNorm_type must be one of {LAYER_NORM_TYPES}, got {layer_norm_type!r}"
            )
        norm = BiasFreeLayerNorm if layer_norm_type == "BiasFree" else WithBiasLayerNorm
        self.body = norm(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class FeedForward(nn.Module):
    """Gated-Dconv FFN: 1×1 expand to two branches, 3×3 depth-wise, GELU(a)·b, 1×1 project."""

    def __init__(self, dim: int, expansion: float, bias: bool) -> None:
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, 2 * hidden, 1, bias=bias)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


class Attention(nn.Module):
    """Multi-Dconv-head transposed attention: per head, a (C/h)×(C/h) map over channels.

    Queries and keys are L2-normalised along the pixels and scaled by a learned per-head
    temperature, so the cost is linear in H·W — which is why Restormer runs on full images.
    """

    def __init__(self, dim: int, num_heads: int, bias: bool) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(3 * dim, 3 * dim, 3, padding=1, groups=3 * dim, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        # Channels are grouped head-major: channel index = head · (C/heads) + c'.
        q, k, v = (
            t.reshape(b, self.num_heads, c // self.num_heads, h * w)
            for t in self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        )
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class TransformerBlock(RecomputedBlock):
    """Pre-norm block: x + attn(norm1(x)), then + ffn(norm2(·)); the unit of checkpointing."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_expansion_factor: float,
        bias: bool,
        layer_norm_type: str,
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm(dim, layer_norm_type)
        self.attn = Attention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, layer_norm_type)
        self.ffn = FeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    """A 3×3 convolution from the image to `dim` features (no patchifying despite the name).

    Bias-free whatever the model's `bias` flag: the release builds it with its default.
    """

    def __init__(self, in_channels: int, dim: int, bias: bool = False) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, 3, padding=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    """Halve the resolution, double the channels: 3×3 conv to C/2, then pixel-unshuffle ×2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """Double the resolution, halve the channels: 3×3 conv to 2C, then pixel-shuffle ×2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels * 2, 3, padding=1, bias=False), nn.PixelShuffle(2)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


def _stage(
    depth: int, dim: int, heads: int, ffn_expansion_factor: float, bias: bool, norm: str
) -> nn.Sequential:
    return nn.Sequential(
        *(TransformerBlock(dim, heads, ffn_expansion_factor, bias, norm) for _ in range(depth))
    )


class Restormer(nn.Module):
    """Restormer U-Net; argument names are the release's so configs read like its YAMLs.

    Widths per level are dim·(1, 2, 4, 8). After the last upsampling the skip is concatenated
    without a 1×1 reduction, so decoder level 1 and the refinement blocks run at 2·dim.
    `dual_pixel_task` (defocus deblurring) adds a skip convolution and drops the global residual.
    """

    def __init__(
        self,
        inp_channels: int = 3,
        out_channels: int = 3,
        dim: int = 48,
        num_blocks: tuple[int, int, int, int] | list[int] = (4, 6, 6, 8),
        num_refinement_blocks: int = 4,
        heads: tuple[int, int, int, int] | list[int] = (1, 2, 4, 8),
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        LayerNorm_type: str = "WithBias",  # the release's spelling, kept for its configs
        dual_pixel_task: bool = False,
    ) -> None:
        super().__init__()
        if len(num_blocks) != 4 or len(heads) != 4:
            raise ValueError("num_blocks and heads need one entry per level (4)")
        block = {"ffn_expansion_factor": ffn_expansion_factor, "bias": bias, "norm": LayerNorm_type}
        d1, d2, d3, d4 = dim, dim * 2, dim * 4, dim * 8
        self.dual_pixel_task = dual_pixel_task

        self.patch_embed = OverlapPatchEmbed(inp_channels, d1)
        self.encoder_level1 = _stage(num_blocks[0], d1, heads[0], **block)
        self.down1_2 = Downsample(d1)
        self.encoder_level2 = _stage(num_blocks[1], d2, heads[1], **block)
        self.down2_3 = Downsample(d2)
        self.encoder_level3 = _stage(num_blocks[2], d3, heads[2], **block)
        self.down3_4 = Downsample(d3)
        self.latent = _stage(num_blocks[3], d4, heads[3], **block)

        self.up4_3 = Upsample(d4)
        self.reduce_chan_level3 = nn.Conv2d(d4, d3, 1, bias=bias)
        self.decoder_level3 = _stage(num_blocks[2], d3, heads[2], **block)
        self.up3_2 = Upsample(d3)
        self.reduce_chan_level2 = nn.Conv2d(d3, d2, 1, bias=bias)
        self.decoder_level2 = _stage(num_blocks[1], d2, heads[1], **block)
        self.up2_1 = Upsample(d2)
        self.decoder_level1 = _stage(num_blocks[0], d2, heads[0], **block)
        self.refinement = _stage(num_refinement_blocks, d2, heads[0], **block)
        if dual_pixel_task:
            self.skip_conv = nn.Conv2d(d1, d2, 1, bias=bias)
        self.output = nn.Conv2d(d2, out_channels, 3, padding=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f"Restormer needs H, W divisible by 8, got {tuple(x.shape[-2:])}")
        embedded = self.patch_embed(x)
        enc1 = self.encoder_level1(embedded)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))

        dec3 = self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], dim=1))
        dec3 = self.decoder_level3(dec3)
        dec2 = self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], dim=1))
        dec2 = self.decoder_level2(dec2)
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], dim=1))
        dec1 = self.refinement(dec1)
        if self.dual_pixel_task:
            return self.output(dec1 + self.skip_conv(embedded))
        return self.output(dec1) + x
