"""BM3D (Dabov, Foi, Katkovnik & Egiazarian, TIP 2007), the classical control of the grid.

Paper: "Image Denoising by Sparse 3-D Transform-Domain Collaborative Filtering", IEEE TIP 16(8),
2007; the implementation is the authors' own, the `bm3d` package 4.0.3 (Mäkinen, Azzari & Foi,
TIP 2020, on the `bm4d` binaries; "free for non-commercial use", see README), called as
`bm3d.bm3d_rgb(z, sigma, profile="np", colorspace="opp")`: block matching on the luminance of
the opponent colour transform, hard thresholding then Wiener filtering.

Why it is here: a denoiser nobody trained. If MIGA flips labels through BM3D as well, the
effect is not a quirk of learned denoisers; if it does not, that is a finding too.

BM3D is not differentiable (block matching is a discrete search, and it runs as compiled code
on NumPy arrays), so the attack goes through **BPDA** (Athalye, Carlini & Wagner, ICML 2018):
the forward pass is always the real BM3D, the backward pass uses the gradient of the
**identity** (∂D(x)/∂x ≈ I: the upstream gradient is passed through unchanged). The identity
is the surrogate BPDA proposes for denoising-like transforms, D(x) ≈ x, and it biases the
attack towards no particular smoothing scale. Every value the cell *scores*, D(x_n) and
D(x_n+δ), comes from the real algorithm; only the attack's gradient is approximate.

BM3D is non-blind: it is told the σ of the noise (`non_blind = True`; `miga.denoisers.Denoiser`
passes σ/255 from `denoiser.noise_level`, which the config takes from `noise.sigma`). It runs
on the CPU in float64, one image at a time (seconds per 128 px image): a tensor on a GPU is
copied to the host and back.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np
import torch
from torch import Tensor, nn

INSTALL = "pip install 'bm3d==4.0.3' 'bm4d==4.2.5'  (or the miga extra: pip install -e '.[bm3d]')"


def import_bm3d() -> ModuleType:
    """The `bm3d` package, or an error that says how to install it."""
    try:
        return importlib.import_module("bm3d")
    except ImportError as err:
        raise ImportError(
            f"denoiser=bm3d runs the `bm3d` package, which is not installed ({err}): {INSTALL}; "
            "`make install` does this. Its licence allows non-commercial use only (README)."
        ) from err


def bm3d_images(x: Tensor, sigma: Tensor, profile: str, colorspace: str) -> Tensor:
    """The real BM3D on every image of `x` (N,3,H,W) with σ `sigma[i]` on the [0,1] scale."""
    package = import_bm3d()
    images = x.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
    sigmas = sigma.detach().to("cpu", torch.float64).numpy()
    out = np.stack(
        [
            package.bm3d_rgb(np.ascontiguousarray(image), float(s), profile, colorspace)
            for image, s in zip(images, sigmas, strict=True)
        ]
    )
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(device=x.device, dtype=x.dtype)


class _BM3DIdentityBPDA(torch.autograd.Function):
    """Forward: the real BM3D. Backward: the identity's gradient (BPDA surrogate D(x) ≈ x)."""

    @staticmethod
    def forward(ctx, x: Tensor, sigma: Tensor, profile: str, colorspace: str) -> Tensor:  # noqa: ANN001
        return bm3d_images(x, sigma, profile, colorspace)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None]:  # noqa: ANN001
        return grad, None, None, None


class BM3D(nn.Module):
    """Colour BM3D with the identity as BPDA gradient; `forward(x, sigma)` like FFDNet's.

    Args:
        profile: the `bm3d` package's parameter profile (`np`: its normal profile, the
            package's default; `refilter`, `vn`, `high`, … as in `bm3d.bm3d_rgb`).
        colorspace: colour transform before block matching, `opp` (the package's default) or
            `YCbCr`.
    """

    #: reads the noise level: `miga.denoisers.Denoiser` passes σ/255 from its `noise_level`
    non_blind = True

    def __init__(self, profile: str = "np", colorspace: str = "opp") -> None:
        super().__init__()
        import_bm3d()  # fail at construction, with the install line, not mid-cell
        if colorspace not in ("opp", "YCbCr"):
            raise ValueError(f"BM3D colorspace must be 'opp' or 'YCbCr', got {colorspace!r}")
        self.profile = profile
        self.colorspace = colorspace

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        if x.shape[1] != 3:
            raise ValueError(f"BM3D here is the colour version: expected 3 channels, got {x.shape}")
        return _BM3DIdentityBPDA.apply(x, sigma, self.profile, self.colorspace)
