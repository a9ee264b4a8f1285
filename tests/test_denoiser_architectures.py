"""Our Restormer / NAFNet / SwinIR / DnCNN reproduce the official checkpoints' layout.

No official weight file is available offline, so the contract is checked from both ends:
- full-size models built from the shipped configs (on the meta device: no memory, no time)
  have exactly the official key count, parameter count and buffers (docs/checkpoints.md);
- small models saved in each release's container format load back strictly through
  `Denoiser(checkpoint=...)` and give bit-identical outputs, at odd image sizes;
- wrong, truncated and missing files fail with a `CheckpointError` a researcher can act on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import DictConfig
from torch import nn

from miga.checkpoints import CheckpointError
from miga.denoisers import Denoiser
from miga.denoisers.dncnn import DnCNN
from miga.denoisers.nafnet import NAFNet
from miga.denoisers.recompute import RecomputedBlock, set_activation_checkpointing
from miga.denoisers.restormer import Restormer
from miga.denoisers.swinir import SwinIR, shifted_window_mask
from tests.conftest import compose_config

# Random-weight models are the point here; the loader's warning about them is noise.
pytestmark = pytest.mark.filterwarnings("ignore:.*RANDOM weights:UserWarning")

ODD = (37, 53)  # neither a multiple of 8 nor of 16


def _dncnn_params(in_nc: int, nc: int, nb: int) -> int:
    """docs/checkpoints.md's closed form: first conv, nb−2 middle convs, last conv (biased)."""
    return (in_nc * nc * 9 + nc) + (nb - 2) * (nc * nc * 9 + nc) + (nc * in_nc * 9 + in_nc)


# config name → (state-dict keys, parameters, state-dict buffers, checkpoint file name).
# Official figures (docs/checkpoints.md): Restormer 406 keys / 26,112 k; NAFNet-w64 664 keys /
# 115.98 M; SwinIR 544 keys incl. 54 buffers / 11.504 M; DnCNN colour blind 40 keys / 668,227.
FULL_SIZE = {
    "restormer": (406, 26_111_668, 0, "gaussian_color_denoising_sigma50.pth"),
    "restormer_blind": (406, 26_111_668, 0, "gaussian_color_denoising_blind.pth"),
    "restormer_real": (406, 26_111_668, 0, "real_denoising.pth"),
    "nafnet": (664, 115_982_915, 0, "NAFNet-SIDD-width64.pth"),
    "nafnet_width32": (664, 29_159_715, 0, "NAFNet-SIDD-width32.pth"),
    "swinir": (544, 11_504_163, 54, "005_colorDN_DFWB_s128w8_SwinIR-M_noise50.pth"),
    "dncnn": (40, _dncnn_params(3, 64, 20), 0, "dncnn_color_blind.pth"),
}


def _load_config(name: str) -> DictConfig:
    """`denoiser=<name>` composed as a run would (its defaults included), checkpoints in /ckpt."""
    return compose_config([f"denoiser={name}", "paths.checkpoints=/ckpt"]).denoiser


def _layout(net: nn.Module) -> tuple[int, int, int]:
    state = net.state_dict()
    params = {name for name, _ in net.named_parameters()}
    return len(state), sum(p.numel() for p in net.parameters()), len(set(state) - params)


@pytest.mark.parametrize("name", sorted(FULL_SIZE))
def test_full_size_config_matches_official_layout(name: str) -> None:
    keys, params, buffers, filename = FULL_SIZE[name]
    cfg = _load_config(name)
    assert Path(cfg.checkpoint).name == filename
    with torch.device("meta"):
        denoiser = hydra.utils.instantiate(cfg, checkpoint=None)
    assert _layout(denoiser.net) == (keys, params, buffers)


def test_full_size_counts_agree_with_checkpoints_md() -> None:
    assert round(FULL_SIZE["restormer"][1] / 1e3) == 26_112
    assert round(FULL_SIZE["nafnet"][1] / 1e6, 2) == 115.98
    assert round(FULL_SIZE["swinir"][1] / 1e6, 3) == 11.504
    assert FULL_SIZE["dncnn"][1] == 668_227
    with torch.device("meta"):
        gray = DnCNN(in_nc=1, out_nc=1, nc=64, nb=17)
    assert _layout(gray) == (34, _dncnn_params(1, 64, 17), 0)
    assert list(gray.state_dict())[-1] == "model.32.bias"


def test_swinir_noise_level_selects_the_checkpoint() -> None:
    cfg = _load_config("swinir")
    cfg.noise_level = 25
    assert Path(cfg.checkpoint).name == "005_colorDN_DFWB_s128w8_SwinIR-M_noise25.pth"
    assert "25" in cfg.variant


# --- small models: the same code paths at a size a 2-core CPU runs in milliseconds ----------

SMALL: dict[str, tuple[Callable[[], nn.Module], int, int]] = {
    # name: (factory, channels, wrapper pad_multiple as in the configs)
    "restormer": (
        lambda: Restormer(
            dim=8,
            num_blocks=[1, 1, 1, 2],
            num_refinement_blocks=1,
            heads=[1, 2, 2, 4],
            LayerNorm_type="BiasFree",
        ),
        3,
        8,
    ),
    "nafnet": (lambda: NAFNet(3, 8, 1, [1, 1, 1, 1], [1, 1, 1, 1]), 3, 1),
    "swinir": (
        lambda: SwinIR(img_size=32, window_size=8, depths=[2, 2], embed_dim=12, num_heads=[2, 3]),
        3,
        1,
    ),
    "dncnn_color": (lambda: DnCNN(3, 3, nc=16, nb=5), 3, 1),
    "dncnn_gray": (lambda: DnCNN(1, 1, nc=16, nb=4), 1, 1),
}


def _build(name: str, seed: int) -> nn.Module:
    """A small model with every parameter perturbed, so that no block is an identity
    (NAFNet's zero-initialised β/γ, Restormer's unit temperatures)."""
    torch.manual_seed(seed)
    net = SMALL[name][0]()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def _container(state: dict, form: str) -> dict:
    if form == "params":  # BasicSR releases: Restormer, NAFNet, SwinIR
        return {"params": state}
    if form == "params_ema":  # BasicSR EMA: preferred when both are present
        decoy = {k: torch.zeros_like(v) for k, v in state.items()}
        return {"params": decoy, "params_ema": state}
    if form == "module":  # saved from a DataParallel / DDP model
        return {"params": {f"module.{k}": v for k, v in state.items()}}
    return dict(state)  # bare (KAIR DnCNN)


ROUNDTRIPS = [
    ("restormer", "params"),
    ("nafnet", "params"),
    ("nafnet", "module"),
    ("swinir", "params"),
    ("swinir", "params_ema"),
    ("dncnn_color", "bare"),
    ("dncnn_gray", "bare"),
]


def _save(state: dict, path: Path, form: str) -> Path:
    # KAIR's files use torch's legacy (non-zip) format; BasicSR's the zip one.
    torch.save(_container(state, form), path, _use_new_zipfile_serialization=form != "bare")
    return path


@pytest.mark.parametrize(("name", "form"), ROUNDTRIPS)
def test_official_container_loads_strictly_and_reproduces_outputs(
    name: str, form: str, tmp_path: Path
) -> None:
    _, channels, pad = SMALL[name]
    original, fresh = _build(name, seed=0), _build(name, seed=1)
    assert not torch.equal(*(next(iter(m.state_dict().values())) for m in (original, fresh)))
    path = _save(original.state_dict(), tmp_path / f"{name}.pth", form)

    loaded = Denoiser(net=fresh, checkpoint=path, variant=name, pad_multiple=pad, clamp=False)
    reference = Denoiser(net=original, variant=name, pad_multiple=pad, clamp=False)
    x = torch.rand(1, channels, *ODD, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = loaded(x)
        assert out.shape == x.shape
        assert torch.equal(out, reference(x))


@pytest.mark.parametrize("name", ["restormer", "nafnet", "swinir"])
def test_gradient_reaches_the_input_through_the_wrapper(name: str) -> None:
    _, channels, pad = SMALL[name]
    denoiser = Denoiser(net=_build(name, seed=0), pad_multiple=pad)
    x = torch.rand(1, channels, *ODD, requires_grad=True)
    denoiser(x).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in denoiser.parameters())


# (architecture, its repeated blocks at the SMALL size): the units checkpointing recomputes.
CHECKPOINTED_BLOCKS = [("restormer", 2 * (1 + 1 + 1) + 2 + 1), ("nafnet", 9), ("swinir", 4)]


@pytest.mark.parametrize(("name", "blocks"), CHECKPOINTED_BLOCKS)
def test_activation_checkpointing_reaches_every_block_and_changes_no_number(
    name: str, blocks: int
) -> None:
    """Checkpointing is per block (one segment for the whole network saved no memory), and
    recomputation must give the same output and the same gradient with respect to the input."""
    _, channels, pad = SMALL[name]
    denoiser = Denoiser(net=_build(name, seed=0), pad_multiple=pad)
    units = [m for m in denoiser.modules() if isinstance(m, RecomputedBlock)]
    assert len(units) == blocks
    x = torch.rand(2, channels, *ODD, generator=torch.Generator().manual_seed(0))
    results = []
    for enabled in (False, True):
        denoiser.activation_checkpointing = enabled
        assert all(unit.activation_checkpointing is enabled for unit in units)
        leaf = x.clone().requires_grad_(True)
        out = denoiser(leaf)
        (grad,) = torch.autograd.grad(out.square().sum(), leaf)
        results.append((out.detach(), grad))
    (out_off, grad_off), (out_on, grad_on) = results
    assert torch.equal(out_on, out_off)
    torch.testing.assert_close(grad_on, grad_off, rtol=1e-6, atol=1e-7)
    assert grad_on.abs().sum() > 0


def test_full_size_restormer_checkpoints_each_transformer_block() -> None:
    cfg = _load_config("restormer")
    cfg.checkpoint, cfg.activation_checkpointing = None, True
    with torch.device("meta"):
        denoiser = hydra.utils.instantiate(cfg)
    # 2·(4+6+6) encoder/decoder blocks + 8 latent + 4 refinement
    assert set_activation_checkpointing(denoiser.net, True) == 44


def test_activation_checkpointing_without_blocks_warns_and_runs() -> None:
    denoiser = Denoiser(net=_build("dncnn_color", seed=0), variant="small DnCNN")
    with pytest.warns(UserWarning, match="small DnCNN: activation_checkpointing=true has no"):
        denoiser.activation_checkpointing = True
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    denoiser(x).sum().backward()
    assert x.grad is not None


# --- failures name the file and the first offending keys -------------------------------------

MISMATCHES = [
    # (file from, loaded into, a key the message must name)
    ("nafnet", "restormer", "patch_embed.proj.weight"),  # another architecture: missing keys
    ("dncnn_gray", "dncnn_color", "model.0.weight"),  # another variant: shapes and depth
]


@pytest.mark.parametrize(("source", "target", "key"), MISMATCHES)
def test_checkpoint_of_another_model_raises(
    source: str, target: str, key: str, tmp_path: Path
) -> None:
    path = _save(_build(source, 0).state_dict(), tmp_path / f"{source}.pth", "params")
    with pytest.raises(CheckpointError, match=re.escape(str(path))) as err:
        Denoiser(net=_build(target, 0), checkpoint=path, variant=f"small {target}")
    assert key in str(err.value)
    assert f"small {target}" in str(err.value)


def test_swinir_built_for_another_img_size_names_the_attn_mask(tmp_path: Path) -> None:
    """The trap of SwinIR files: masks are stored for the training size, so img_size matters."""
    net = _build("swinir", 0)
    path = _save(net.state_dict(), tmp_path / "swinir32.pth", "params")
    other = SwinIR(img_size=64, window_size=8, depths=[2, 2], embed_dim=12, num_heads=[2, 3])
    with pytest.raises(
        CheckpointError, match=r"attn_mask: file \(16, 64, 64\) vs model \(64, 64, 64\)"
    ):
        Denoiser(net=other, checkpoint=path)


def test_truncated_file_raises(tmp_path: Path) -> None:
    path = _save(_build("nafnet", 0).state_dict(), tmp_path / "full.pth", "params")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=re.escape(str(truncated))):
        Denoiser(net=_build("nafnet", 0), checkpoint=truncated)


def test_missing_file_raises_with_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "checkpoints" / "gaussian_color_denoising_sigma50.pth"
    with pytest.raises(CheckpointError, match=re.escape(str(missing))):
        Denoiser(net=_build("restormer", 0), checkpoint=missing)


# --- SwinIR away from its training size ------------------------------------------------------


def test_swinir_recomputes_the_mask_for_other_sizes() -> None:
    net = _build("swinir", 0)
    stored = net.layers[0].residual_group.blocks[1].attn_mask
    assert stored.shape == (16, 64, 64)  # (32 / 8)² windows
    assert torch.equal(stored, shifted_window_mask(32, 32, 8, 4))
    assert net.attention_mask(32, 32, stored.device) is None  # training size: stored mask
    recomputed = net.attention_mask(40, 56, stored.device)
    assert recomputed.shape == (35, 64, 64)  # (40 / 8) · (56 / 8) windows
    with torch.no_grad():
        out = net(torch.rand(1, 3, 40, 56))
    assert out.shape == (1, 3, 40, 56) and torch.isfinite(out).all()


def test_swinir_recomputed_mask_equals_a_stored_one() -> None:
    """A model built for 32 px run at 64 px gives what a model built for 64 px gives."""
    small = _build("swinir", 0)
    big = SwinIR(img_size=64, window_size=8, depths=[2, 2], embed_dim=12, num_heads=[2, 3]).eval()
    masks = {k for k in big.state_dict() if k.endswith("attn_mask")}
    state = {k: v for k, v in small.state_dict().items() if k not in masks}
    assert set(big.load_state_dict(state, strict=False).missing_keys) == masks
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(small(x), big(x), rtol=0, atol=1e-6)


# --- tiling -----------------------------------------------------------------------------------


def test_tiled_equals_untiled_when_overlap_covers_the_receptive_field() -> None:
    """DnCNN with 5 convs sees ±5 px: tiles overlapping by 16 px must give the same image."""
    net = _build("dncnn_color", 0)
    whole = Denoiser(net=net, clamp=False)
    tiled = Denoiser(net=net, tile=32, tile_overlap=16, clamp=False)
    x = torch.rand(1, 3, 70, 90)
    with torch.no_grad():
        torch.testing.assert_close(tiled(x), whole(x), rtol=0, atol=1e-5)
