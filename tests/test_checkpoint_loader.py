"""The strict checkpoint loaders accept exactly what torch's strict `load_state_dict` accepts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from miga.checkpoints import CheckpointError, load_checkpoint, state_dict_mismatch
from miga.mi.estimators import critic_state_from_file


def _bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())


def _pre_041_state(net: nn.Module) -> dict[str, torch.Tensor]:
    """The layout of a file written before torch 0.4.1: no `num_batches_tracked`, no metadata."""
    net[1].running_mean.fill_(0.25)
    net[1].running_var.fill_(2.0)
    return {k: v.clone() for k, v in net.state_dict().items() if "num_batches_tracked" not in k}


def test_bn_file_without_num_batches_tracked_loads(tmp_path):
    source = _bn_net()
    state = _pre_041_state(source)
    assert "1.num_batches_tracked" not in state
    torch.save(state, tmp_path / "old.pth")
    target = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    load_checkpoint(target, tmp_path / "old.pth", "BN net")
    assert torch.equal(target[0].weight, source[0].weight)
    assert torch.equal(target[1].running_var, torch.full((4,), 2.0))


def test_missing_weight_still_named(tmp_path):
    state = _pre_041_state(_bn_net())
    del state["0.weight"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match=r"missing \['0\.weight'\]"):
        load_checkpoint(_bn_net(), tmp_path / "broken.pth", "BN net")


def test_version_2_file_without_counter_is_refused_like_torch():
    """With metadata saying the layer is version 2, torch's strict load needs the counter too."""
    net = _bn_net()
    full = net.state_dict()
    state = type(full)((k, v) for k, v in full.items() if "num_batches_tracked" not in k)
    state._metadata = full._metadata
    with pytest.raises(RuntimeError, match="num_batches_tracked"):
        _bn_net().load_state_dict(state, strict=True)
    mismatch = state_dict_mismatch(state, net.state_dict(), model=net)
    assert mismatch is not None and "1.num_batches_tracked" in mismatch


def test_critic_loader_accepts_pre_041_bn(tmp_path):
    source = _bn_net()
    torch.save(_pre_041_state(source), tmp_path / "critic.pth")
    critic = _bn_net()
    critic.load_state_dict(critic_state_from_file(tmp_path / "critic.pth", critic), strict=True)
    assert torch.equal(critic[1].running_mean, torch.full((4,), 0.25))
