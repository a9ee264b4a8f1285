"""OmegaConf resolvers the configs use, registered once on import."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def cell_dirname(overrides: str, limit: int = 120) -> str:
    """A folder name for a cell's overrides: readable, and short enough for any file system.

    Long override lists keep a readable prefix and end in a hash of the whole list, so two
    cells never share a folder and the same cell always finds its own.
    """
    if len(overrides) <= limit:
        return overrides or "default"
    digest = hashlib.sha256(overrides.encode()).hexdigest()[:12]
    return f"{overrides[: limit - 13]}-{digest}"


def register_resolvers() -> None:
    """`${miga.package_dir:}`: the installed `miga/` folder (where shipped weights live);
    `${miga.cell_dirname:<overrides>}`: `cell_dirname`."""
    if not OmegaConf.has_resolver("miga.package_dir"):
        OmegaConf.register_new_resolver("miga.package_dir", lambda: str(PACKAGE_DIR))
    if not OmegaConf.has_resolver("miga.cell_dirname"):
        OmegaConf.register_new_resolver("miga.cell_dirname", cell_dirname)


def config_hash(cfg: DictConfig, ignore: tuple[str, ...] = ("logger", "resume", "paths")) -> str:
    """sha256 of the resolved config minus keys that do not change results (where logs go)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    for key in ignore:
        plain.pop(key, None)
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()


register_resolvers()
