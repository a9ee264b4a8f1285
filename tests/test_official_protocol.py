"""Each denoiser follows its official test script: weight entry read and test-time padding.

SwinIR's `main_test_swinir.py` pads to (h//8+1)·8 by mirroring (`cat([x, flip(x)])`) even when
h is a multiple of 8 already, then crops; the official Restormer, NAFNet and SwinIR loaders read
the file's `params` entry, not `params_ema`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from miga.checkpoints import CheckpointError
from miga.denoisers import Denoiser
from tests.test_denoiser_architectures import _build, _load_config

pytestmark = pytest.mark.filterwarnings("ignore:.*RANDOM weights:UserWarning")


def _official_swinir_test(net: torch.nn.Module, img_lq: torch.Tensor, window_size: int = 8):
    """The padding of the official SwinIR test script, written out as the script does it."""
    _, _, h_old, w_old = img_lq.size()
    h_pad = (h_old // window_size + 1) * window_size - h_old
    w_pad = (w_old // window_size + 1) * window_size - w_old
    img_lq = torch.cat([img_lq, torch.flip(img_lq, [2])], 2)[:, :, : h_old + h_pad, :]
    img_lq = torch.cat([img_lq, torch.flip(img_lq, [3])], 3)[:, :, :, : w_old + w_pad]
    return net(img_lq)[..., :h_old, :w_old]


def _padding_from_config(name: str) -> dict:
    cfg = _load_config(name)
    return {k: cfg[k] for k in ("pad_multiple", "pad_mode", "pad_always") if k in cfg}


@pytest.mark.parametrize("size", [(37, 45), (64, 64)])
def test_swinir_pads_like_the_official_script(size: tuple[int, int]) -> None:
    net = _build("swinir", seed=0)
    denoiser = Denoiser(net=net, clamp=False, **_padding_from_config("swinir"))
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, official = denoiser(x), _official_swinir_test(net, x)
        only_net_pad = net(x)  # what the wrapper did before: the network's own ×8 reflect-pad
    torch.testing.assert_close(ours, official, atol=1e-6, rtol=0)
    if size == (64, 64):  # the official path pads 64 → 72: the borders see other context
        assert (only_net_pad - official).abs().amax() > 1e-4


@pytest.mark.parametrize(
    "name", ["restormer", "restormer_blind", "restormer_real", "nafnet", "nafnet_width32", "swinir"]
)
def test_configs_read_the_params_entry_like_the_official_loaders(name: str) -> None:
    assert _load_config(name).weight_key == "params"


def test_weight_key_picks_params_over_params_ema(tmp_path: Path) -> None:
    net, decoy = _build("dncnn_color", seed=0), _build("dncnn_color", seed=1)
    path = tmp_path / "both.pth"
    torch.save({"params": net.state_dict(), "params_ema": decoy.state_dict()}, path)
    fresh = _build("dncnn_color", seed=2)
    loaded = Denoiser(net=fresh, checkpoint=path, weight_key="params")
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.net.state_dict()[key], value), key
    missing = tmp_path / "ema_only.pth"
    torch.save({"params_ema": decoy.state_dict()}, missing)
    with pytest.raises(CheckpointError, match="no 'params' entry.*weight_key"):
        Denoiser(net=_build("dncnn_color", seed=2), checkpoint=missing, weight_key="params")
