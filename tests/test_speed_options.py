"""The `speed` switches change how a cell computes, not what it finds.

channels_last reorders float sums, so model outputs move by rounding (~1e-7); Adam normalises
every element's step, so where δ's gradient is that close to zero its sign, and that pixel's
update, can differ. Exactness is therefore asked of the attack-free numbers, agreement of the
attack's outcomes.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from miga.run import build_module
from tests.conftest import compose_config

CL = torch.channels_last


def _predict(overrides: list[str], demo_batch) -> tuple[nn.Module, dict]:
    module = build_module(compose_config(["attack.steps=3", *overrides]))
    images, labels, index = (t[:3] for t in demo_batch)
    batch = {"image": images, "label": labels, "index": index}
    return module, module.predict_step(batch, 0)


def test_channels_last_gives_the_default_layouts_numbers(demo_batch) -> None:
    default_module, default = _predict([], demo_batch)
    module, fast = _predict(["speed.channels_last=true"], demo_batch)
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=CL) for c in convs)
    assert not default_module.denoiser.net.model[0].weight.is_contiguous(memory_format=CL)
    fast, default = fast["columns"], default["columns"]
    assert fast.keys() == default.keys()
    for key in ("psnr_noisy", "psnr_denoised", "ssim_denoised", "pred_clean", "pred_denoised"):
        torch.testing.assert_close(fast[key], default[key], rtol=1e-5, atol=1e-5, msg=key)
    for key in ("pred_attacked", "success", "steps"):
        torch.testing.assert_close(fast[key], default[key], msg=key)
    for key in ("psnr_attacked", "psnr_attacked_vs_denoised", "psnr_perturbed_vs_noisy"):
        torch.testing.assert_close(fast[key], default[key], rtol=0, atol=0.2, msg=key)
    assert fast["linf"].max() <= 4 / 255 + 1e-6


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_compile_wraps_the_cells_own_models_without_compiling_yet() -> None:
    """`torch.compile` is lazy: building the module compiles nothing (the first batch does);
    the compiled victims must wrap the very modules Lightning moves between devices."""
    module = build_module(compose_config(["speed.compile=true"]))
    victim = module.victim
    assert victim.denoiser is not module.denoiser
    assert victim.denoiser._orig_mod is module.denoiser
    assert victim.downstream._orig_mod is module.downstream
    plain = build_module(compose_config()).victim
    assert plain.denoiser is not None and not hasattr(plain.denoiser, "_orig_mod")
