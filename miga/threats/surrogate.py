"""The surrogate choice: which models the attack optimises through (docs/threat_models.md).

White-box, the attacker differentiates through the victim's own denoiser and task model.
Transfer, it has only its own stand-ins (`surrogate.denoiser`, `surrogate.downstream` in the
config) and its δ is scored through the victim's. One rule decides which applies per model.
"""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf


def surrogate(cfg: DictConfig, group: str) -> Any:
    """The model at `surrogate.<group>`, or None (white-box) when unset or the victim's own
    config: a surrogate equal to the victim is the victim, and its cell the matrix's diagonal."""
    node = OmegaConf.select(cfg, f"surrogate.{group}")
    if node is None or node == cfg.get(group):
        return None
    return instantiate(node)
