"""OmegaConf resolvers the configs use, registered once on import."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def register_resolvers() -> None:
    """`${miga.package_dir:}`: the installed `miga/` folder (where shipped weights live)."""
    if not OmegaConf.has_resolver("miga.package_dir"):
        OmegaConf.register_new_resolver("miga.package_dir", lambda: str(PACKAGE_DIR))


def config_hash(cfg: DictConfig, ignore: tuple[str, ...] = ("logger", "resume", "paths")) -> str:
    """sha256 of the resolved config minus keys that do not change results (where logs go)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    for key in ignore:
        plain.pop(key, None)
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()


register_resolvers()
