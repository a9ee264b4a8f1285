"""SwinIR (Liang et al., ICCVW 2021) for denoising, with the parameter layout of the release.

Written for this project from the paper and the release's parameter names (JingyunLiang/SwinIR,
the `upsampler=''` path used by the denoising models): the module tree reproduces those names
and shapes so that `00{4,5}_*DN_DFWB_s128w8_SwinIR-M_noise*.pth` load with `strict=True`
(544 keys, 11.50 M parameters, 54 buffers for the colour model).

Shallow 3×3 conv → residual Swin transformer blocks (RSTB: window attention blocks, every
second one on a cyclically shifted grid, closed by a 3×3 conv and a residual) → 3×3 conv, with
a global residual to the (mean-subtracted) input.

Two things the checkpoints force on the layout:
- Every shifted block holds its attention mask as a persistent buffer (`attn_mask`, one
  (ws²×ws²) mask per window of an `img_size`² image), so the model must be built with the
  training `img_size` (128) to load strictly. At other input sizes the mask is recomputed on
  the fly, once per forward and shared by all shifted blocks (they share window and shift).
- `relative_position_index` is a persistent buffer too, although it is a pure function of the
  window size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from torch import Tensor, nn

from miga.denoisers.recompute import RecomputedBlock

#: Per-channel mean of the training set (DIV2K), subtracted inside the model for RGB input.
RGB_MEAN = (0.4488, 0.4371, 0.4040)
#: The additive value the release puts between positions of different shifted regions.
MASK_VALUE = -100.0


def window_partition(x: Tensor, ws: int) -> Tensor:
    """(B, H, W, C) → (B·nW, ws·ws, C): non-overlapping ws×ws windows, row-major."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // ws, ws, w // ws, ws, c).transpose(2, 3)
    return x.reshape(-1, ws * ws, c)


def window_merge(windows: Tensor, ws: int, h: int, w: int) -> Tensor:
    """Inverse of `window_partition`: (B·nW, ws·ws, C) → (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.reshape(-1, h // ws, w // ws, ws, ws, c).transpose(2, 3)
    return x.reshape(-1, h, w, c)


def relative_position_index(ws: int) -> Tensor:
    """(ws², ws²) index into the (2ws−1)² bias table for every query/key position pair."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij"))
    coords = coords.flatten(1)  # (2, ws²)
    delta = (coords[:, :, None] - coords[:, None, :]) + (ws - 1)  # (2, ws², ws²), in [0, 2ws−2]
    return delta[0] * (2 * ws - 1) + delta[1]


def shifted_window_mask(h: int, w: int, ws: int, shift: int) -> Tensor:
    """(nW, ws², ws²) additive mask for attention on a grid rolled by −shift.

    After the cyclic roll, a window at the bottom/right border mixes pixels from opposite
    image edges; label the 3×3 regions the roll creates and forbid attention across labels.
    """
    labels = torch.zeros(1, h, w, 1)
    bands = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    for i, rows in enumerate(bands):
        for j, cols in enumerate(bands):
            labels[:, rows, cols, :] = 3 * i + j
    labels = window_partition(labels, ws).squeeze(-1)  # (nW, ws²)
    different = labels[:, None, :] != labels[:, :, None]
    return torch.zeros(different.shape).masked_fill(different, MASK_VALUE)


class Mlp(nn.Module):
    """Two linear layers with GELU between them."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a learned relative-position bias."""

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.window_size = window_size
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads)
        )
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x: (B·nW, N, C) windows; mask: (nW, N, N) additive, or None for unshifted blocks."""
        bw, n, c = x.shape
        heads = self.num_heads
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, heads).permute(2, 0, 1)  # (heads, N, N)
        q, k, v = self.qkv(x).view(bw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        if mask is None:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        else:
            # Windows are batch-major (image b, window w); the mask repeats per image.
            nw = mask.shape[0]
            shape = (bw // nw, nw, heads, n, c // heads)
            full = (bias[None] + mask[:, None]).to(q.dtype)  # (nW, heads, N, N)
            out = F.scaled_dot_product_attention(
                q.view(shape), k.view(shape), v.view(shape), attn_mask=full
            ).view(bw, heads, n, c // heads)
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class SwinTransformerBlock(RecomputedBlock):
    """Pre-norm (shifted-)window attention + MLP on a token sequence of an H×W grid; the unit of
    checkpointing."""

    def __init__(
        self,
        dim: int,
        input_resolution: int,
        num_heads: int,
        window_size: int,
        shift_size: int,
        mlp_ratio: float,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift_size = shift_size
        self.input_resolution = input_resolution
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        mask = None
        if shift_size:
            res = input_resolution
            mask = shifted_window_mask(res, res, window_size, shift_size)
        # Persistent: the checkpoints carry it (for the training size only).
        self.register_buffer("attn_mask", mask)

    def forward(self, x: Tensor, size: tuple[int, int], mask: Tensor | None = None) -> Tensor:
        """x: (B, H·W, C). `mask` overrides the stored one (inputs of another size)."""
        h, w = size
        b, _, c = x.shape
        ws, shift = self.window_size, self.shift_size
        y = self.norm1(x).view(b, h, w, c)
        if shift:
            y = torch.roll(y, shifts=(-shift, -shift), dims=(1, 2))
            mask = self.attn_mask if mask is None else mask
        else:
            mask = None
        y = window_merge(self.attn(window_partition(y, ws), mask), ws, h, w)
        if shift:
            y = torch.roll(y, shifts=(shift, shift), dims=(1, 2))
        x = x + self.drop_path(y.reshape(b, h * w, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class BasicLayer(nn.Module):
    """A stack of Swin blocks alternating plain and shifted windows (key prefix `blocks`)."""

    def __init__(
        self,
        dim: int,
        input_resolution: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        drop_path: list[float],
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim,
                input_resolution,
                num_heads,
                window_size,
                shift_size=0 if i % 2 == 0 else window_size // 2,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                drop_path=drop_path[i],
            )
            for i in range(depth)
        )

    def forward(self, x: Tensor, size: tuple[int, int], mask: Tensor | None) -> Tensor:
        for block in self.blocks:
            x = block(x, size, mask)
        return x


class RSTB(nn.Module):
    """Residual Swin Transformer Block: Swin blocks, then a conv on the image-shaped features,
    plus a residual around the whole group."""

    def __init__(self, dim: int, resi_connection: str, **layer: object) -> None:
        super().__init__()
        self.residual_group = BasicLayer(dim, **layer)
        if resi_connection == "1conv":
            self.conv = nn.Conv2d(dim, dim, 3, padding=1)
        elif resi_connection == "3conv":  # the lighter variant of the release (real-world SR)
            self.conv = nn.Sequential(
                nn.Conv2d(dim, dim // 4, 3, padding=1),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(dim // 4, dim // 4, 1),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(dim // 4, dim, 3, padding=1),
            )
        else:
            raise ValueError(f"resi_connection must be '1conv' or '3conv', got {resi_connection!r}")

    def forward(self, x: Tensor, size: tuple[int, int], mask: Tensor | None) -> Tensor:
        y = self.residual_group(x, size, mask)
        return x + self.conv(_to_image(y, size)).flatten(2).transpose(1, 2)


class PatchEmbed(nn.Module):
    """(B, C, H, W) → (B, H·W, C) tokens (patch size 1), then LayerNorm (key `patch_embed.norm`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.flatten(2).transpose(1, 2))


def _to_image(tokens: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, H·W, C) → (B, C, H, W)."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, *size)


class SwinIR(nn.Module):
    """SwinIR for denoising / JPEG artefact removal (`upscale=1`, `upsampler=''`).

    Argument names are the release's. Input [0,1] of any size: the model reflect-pads H and W
    to a multiple of `window_size`, subtracts the RGB mean (zero for grey) and crops back.
    """

    def __init__(
        self,
        upscale: int = 1,
        in_chans: int = 3,
        img_size: int = 128,
        window_size: int = 8,
        img_range: float = 1.0,
        depths: tuple[int, ...] | list[int] = (6, 6, 6, 6, 6, 6),
        embed_dim: int = 180,
        num_heads: tuple[int, ...] | list[int] = (6, 6, 6, 6, 6, 6),
        mlp_ratio: float = 2.0,
        upsampler: str = "",
        resi_connection: str = "1conv",
        qkv_bias: bool = True,
        drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        if upscale != 1 or upsampler:
            raise ValueError(
                "this SwinIR implements the restoration path only (upscale=1, upsampler=''); "
                f"got upscale={upscale}, upsampler={upsampler!r}"
            )
        if len(depths) != len(num_heads):
            raise ValueError("depths and num_heads need one entry per RSTB")
        if img_size % window_size or img_size <= window_size:
            raise ValueError(
                f"img_size {img_size} must be a multiple > 1 of window_size {window_size}"
            )
        self.img_size = img_size
        self.window_size = window_size
        self.img_range = img_range
        mean = RGB_MEAN if in_chans == 3 else (0.0,) * in_chans
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)

        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, padding=1)
        self.patch_embed = PatchEmbed(embed_dim)
        total = sum(depths)
        rates = [
            drop_path_rate * i / max(total - 1, 1) for i in range(total)
        ]  # linear, as released
        starts = [sum(depths[:i]) for i in range(len(depths))]
        self.layers = nn.ModuleList(
            RSTB(
                embed_dim,
                resi_connection,
                input_resolution=img_size,
                depth=depth,
                num_heads=heads,
                window_size=window_size,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                drop_path=rates[start : start + depth],
            )
            for depth, heads, start in zip(depths, num_heads, starts, strict=True)
        )
        self.norm = nn.LayerNorm(embed_dim)
        if resi_connection == "1conv":
            self.conv_after_body = nn.Conv2d(embed_dim, embed_dim, 3, padding=1)
        else:
            self.conv_after_body = nn.Sequential(
                nn.Conv2d(embed_dim, embed_dim // 4, 3, padding=1),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(embed_dim // 4, embed_dim // 4, 1),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(embed_dim // 4, embed_dim, 3, padding=1),
            )
        self.conv_last = nn.Conv2d(embed_dim, in_chans, 3, padding=1)
        self.apply(_init_weights)

    def attention_mask(self, h: int, w: int, device: torch.device) -> Tensor | None:
        """Mask for a padded h×w input: None = use the blocks' stored (training-size) masks."""
        if (h, w) == (self.img_size, self.img_size):
            return None
        ws = self.window_size
        return shifted_window_mask(h, w, ws, ws // 2).to(device)

    def forward_features(self, x: Tensor) -> Tensor:
        size = (x.shape[-2], x.shape[-1])
        mask = self.attention_mask(*size, x.device)
        tokens = self.patch_embed(x)
        for layer in self.layers:
            tokens = layer(tokens, size, mask)
        return _to_image(self.norm(tokens), size)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        ws = self.window_size
        x = F.pad(x, (0, (-w) % ws, 0, (-h) % ws), mode="reflect")
        x = (x - self.mean) * self.img_range
        first = self.conv_first(x)
        x = x + self.conv_last(self.conv_after_body(self.forward_features(first)) + first)
        return (x / self.img_range + self.mean)[..., :h, :w]


def _init_weights(module: nn.Module) -> None:
    """The release's initialisation: truncated-normal linear weights, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
