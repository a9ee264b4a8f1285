"""Objects from name-keyed config blocks (lightning-hydra-template's `instantiate_callbacks`).

A name-keyed mapping, not a list, so that a user removes (`~callbacks.image_grids`), replaces or
adds (`+callbacks.my_cb={_target_:…}`) one entry from the command line by its name.
"""

from __future__ import annotations

from collections.abc import Mapping

from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf


def instantiate_callbacks(
    cfg: DictConfig | Mapping | None, key: str = "callbacks"
) -> list[Callback]:
    """The Lightning callbacks of the `callbacks` block, in its order; null entries skipped.

    Bad input stops with an error naming `<key>.<name>` and what was expected."""
    if cfg is None:
        return []
    if not isinstance(cfg, Mapping | DictConfig):
        raise TypeError(
            f"{key} must be a mapping of name → {{_target_: …}}, got {type(cfg).__name__}"
        )
    callbacks = []
    for name, node in cfg.items():
        if node is None:
            continue
        if not (isinstance(node, Mapping | DictConfig) and "_target_" in node):
            shown = OmegaConf.to_container(node) if isinstance(node, DictConfig) else node
            raise ValueError(f"{key}.{name} must be a mapping with a `_target_`, got {shown!r}")
        callback = instantiate(node)
        if not isinstance(callback, Callback):
            raise TypeError(
                f"{key}.{name}: {node['_target_']} made a {type(callback).__name__}, not a "
                "lightning.pytorch.callbacks.Callback"
            )
        callbacks.append(callback)
    return callbacks
