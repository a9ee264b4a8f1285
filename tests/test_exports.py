"""Packages export their public classes (configs read `miga.attacks.MIGA`), one file per attack
named like its YAML, and the one broadcast helper."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import torch
from hydra._internal.utils import _locate
from omegaconf import OmegaConf

from miga.utils.tensors import per_sample, sample_norm
from tests.conftest import CONF, REPO

PACKAGES = ["miga.attacks", "miga.defenses", "miga.denoisers", "miga.downstream", "miga.metrics"]
#: attack YAMLs whose module is not named like them, and why (miga.attacks' docstring).
MODULE_OF = {
    "random": "random_noise",
    "pgd_l2": "pgd",
    "apgd_ce": "apgd",
    "apgd_dlr": "apgd",
    "apgd_t": "apgd",
}


def _targets() -> list[tuple[str, str]]:
    """(YAML file, `_target_`) for every `_target_` under conf/ that names a miga object."""
    found = []
    for path in sorted(CONF.rglob("*.yaml")):
        for line in path.read_text().splitlines():
            key, _, value = line.strip().partition(":")
            value = value.split("#")[0].strip()
            if key == "_target_" and value.startswith("miga."):
                found.append((str(path.relative_to(CONF)), value))
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_each_exported_name_is_the_object_its_submodule_defines(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__, package
    for name in module.__all__:
        value = getattr(module, name)
        home = importlib.import_module(value.__module__)
        assert home.__name__.startswith(package + "."), (name, home.__name__)
        assert getattr(home, name) is value
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'Nope'"):
        module.Nope  # noqa: B018


def test_every_config_target_resolves_and_names_a_package_export() -> None:
    """Every `_target_` of conf/ resolves; one inside an exporting package is the short form."""
    targets = _targets()
    assert len(targets) > 50
    for where, target in targets:
        assert _locate(target) is not None, (where, target)
        package = next((p for p in PACKAGES if target.startswith(p + ".")), None)
        if package is not None:
            assert target.count(".") == package.count(".") + 1, (where, target)


def test_one_file_per_attack_named_like_its_yaml_with_its_defaults_home() -> None:
    """conf/attack/<name>.yaml's class lives in miga/attacks/<name>.py (MODULE_OF says where
    not), whose docstring names the YAML as the home of the defaults."""
    checked = 0
    for path in sorted((CONF / "attack").glob("*.yaml")):
        target = OmegaConf.load(path).get("_target_")
        if target is None:  # a preset of another attack (its `defaults:`)
            continue
        name = path.stem
        module = importlib.import_module(_locate(target).__module__)
        assert module.__name__ == f"miga.attacks.{MODULE_OF.get(name, name)}", path.name
        assert f"conf/attack/{name}.yaml" in module.__doc__, module.__name__
        checked += 1
    assert checked >= 10


def test_importing_a_model_package_first_builds_no_import_circle() -> None:
    """`miga.mi.base` (which reads the attacks' StepState) imported before `miga.attacks`, and
    `miga.metrics` imports no scorer (so no model) until a name is read."""
    code = (
        "import sys, miga.mi.base, miga.attacks, miga.metrics\n"
        "assert 'miga.metrics.scorers' not in sys.modules\n"
        "assert miga.attacks.MIGA.__module__ == 'miga.attacks.miga'\n"
        "assert miga.metrics.ImageQuality.__name__ == 'ImageQuality'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_per_sample_broadcasts_one_value_per_sample_over_any_rank() -> None:
    images = torch.ones(2, 3, 2, 2)
    scaled = images * per_sample(torch.tensor([2.0, -1.0]), images)
    assert per_sample(torch.tensor([2.0, -1.0]), images).shape == (2, 1, 1, 1)
    assert torch.equal(scaled[0], torch.full((3, 2, 2), 2.0))
    assert torch.equal(scaled[1], torch.full((3, 2, 2), -1.0))
    rows = torch.zeros(2, 5)
    assert per_sample(torch.tensor([True, False]), rows).shape == (2, 1)


def test_sample_norm_is_each_samples_l2_norm() -> None:
    x = torch.zeros(2, 1, 1, 2)
    x[0, 0, 0] = torch.tensor([3.0, 4.0])  # a 3-4-5 triangle
    x[1, 0, 0] = torch.tensor([0.0, -2.0])
    assert sample_norm(x).tolist() == [5.0, 2.0]
