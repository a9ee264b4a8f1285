"""BM3D: every output is the real algorithm (the `bm3d` package), the gradient is BPDA's identity.

The `bm3d` package (the `bm3d` extra, installed by `make install`) is both what runs and the
reference: the outputs are compared with direct calls of `bm3d.bm3d_rgb` on the same arrays.
BM3D takes about a second per small image on one core, so the images here are 32×32.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from miga.data.demo_photos import DemoPhotos
from miga.denoisers import Denoiser
from miga.denoisers.bm3d import BM3D
from miga.metrics.quality import psnr
from miga.run import build_module
from tests.conftest import compose_config

bm3d = pytest.importorskip("bm3d", reason="the `bm3d` extra: pip install -e '.[bm3d]'")

SIZE = 32


def _photo_and_noisy(sigma: float = 25.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The first demo photo at 32 px and a fixed Gaussian noise draw of σ/255."""
    x = DemoPhotos(size=SIZE, limit=1)[0]["image"][None]
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(7)) * sigma / 255
    return x, x + noise


def _direct(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """`bm3d.bm3d_rgb` called by hand on the HWC float64 array (the package's defaults)."""
    array = image[0].permute(1, 2, 0).double().numpy()
    out = bm3d.bm3d_rgb(np.ascontiguousarray(array), sigma / 255)
    return torch.from_numpy(out).permute(2, 0, 1)[None].float()


@pytest.fixture(scope="module")
def denoiser() -> Denoiser:
    return instantiate(compose_config(["denoiser=bm3d"]).denoiser)


def test_the_config_takes_sigma_from_the_noise_and_marks_bm3d_non_blind() -> None:
    cfg = compose_config(["denoiser=bm3d", "noise.sigma=50"])
    assert cfg.denoiser.noise_level == 50
    made = instantiate(cfg.denoiser)
    assert made.non_blind and made.noise_level == 50 and isinstance(made.net, BM3D)
    assert not list(made.parameters())  # weight-free: nothing loaded, nothing to freeze


def test_forward_is_the_real_bm3d_and_reduces_the_noise(denoiser: Denoiser) -> None:
    x, noisy = _photo_and_noisy()
    with torch.no_grad():
        out = denoiser(noisy)
    reference = _direct(noisy, 25.0)
    # the wrapper clamps to [0,1] as for every denoiser; otherwise the package's own output
    torch.testing.assert_close(out, reference.clamp(0, 1), atol=1e-6, rtol=0)
    # BM3D removes most of σ=25 noise even on a 32 px crop (measured ≈ +7 dB here; a filter that
    # did nothing, or the wrong σ by a factor of 255, would give ≈ 0 dB)
    gain = (psnr(out, x) - psnr(noisy.clamp(0, 1), x)).item()
    assert gain > 4.0, gain


def test_sigma_reaches_the_algorithm() -> None:
    _, noisy = _photo_and_noisy(50.0)
    strong = instantiate(compose_config(["denoiser=bm3d", "noise.sigma=50"]).denoiser)
    with torch.no_grad():
        out = strong(noisy)
    torch.testing.assert_close(out, _direct(noisy, 50.0).clamp(0, 1), atol=1e-6, rtol=0)
    assert (out - _direct(noisy, 25.0).clamp(0, 1)).abs().max() > 1e-2  # σ=25 would differ


def test_backward_is_the_identity_bpda_surrogate() -> None:
    _, noisy = _photo_and_noisy()
    net = BM3D()
    leaf = noisy.clone().requires_grad_(True)
    out = net(leaf, torch.tensor([25 / 255]))
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out * weights).sum().backward()
    assert torch.equal(leaf.grad, weights)  # ∂D/∂x := I: the upstream gradient unchanged
    torch.testing.assert_close(out.detach(), _direct(noisy, 25.0), atol=1e-6, rtol=0)


def test_a_cell_scores_through_the_real_bm3d_and_attacks_through_bpda() -> None:
    module = build_module(
        compose_config(["denoiser=bm3d", "attack.steps=2", "metrics.lpips_checkpoint=null"])
    )
    item = DemoPhotos(size=SIZE, limit=1)[0]
    batch = {
        "image": item["image"][None],
        "label": torch.tensor([item["label"]]),
        "index": torch.tensor([item["index"]]),
    }
    with torch.no_grad():  # as Lightning runs predict
        out = module.predict_step(batch, 0)
    images, columns = out["images"], out["columns"]
    denoised = _direct(images["noisy"], 25.0).clamp(0, 1)
    attacked = _direct(images["perturbed"], 25.0).clamp(0, 1)
    torch.testing.assert_close(images["denoised"], denoised, atol=1e-6, rtol=0)
    torch.testing.assert_close(images["attacked"], attacked, atol=1e-6, rtol=0)
    torch.testing.assert_close(columns["psnr_denoised"], psnr(denoised, batch["image"]))
    torch.testing.assert_close(columns["psnr_attacked"], psnr(attacked, batch["image"]))
    # BPDA gave the attack a usable gradient: δ moved, inside the 4/255 budget
    assert 0 < columns["linf"].item() <= 4 / 255 + 1e-7


def test_a_missing_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bm3d", None)  # `import bm3d` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'bm3d==4\.0\.3' 'bm4d==4\.2\.5'"):
        BM3D()
