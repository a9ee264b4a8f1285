"""`HostReads` counts the reads made by the miga package's own files, found by their real
location: a file elsewhere whose path merely contains `miga/` (torch under `<checkout named
miga>/.venv/lib/...`, the trap of issue 25) is not ours, wherever the checkout lives."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch

import miga
from miga.attacks.base import _Trace
from miga.utils.host_reads import PACKAGE_ROOT, HostReads

#: A module doing exactly two host reads (`bool` and `.item()`) on the tensor it is given.
READER = "def read(t):\n    return bool(t.sum() > 0) + t.item()\n"


def _module_at(path: Path, source: str = READER) -> ModuleType:
    """Write `source` at `path` and import it from there (its code objects carry that path)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"reader_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _trace_reads() -> HostReads:
    """One step recorded on miga's loss trace, then its history: the package's own two reads
    (`tolist` of the losses and of the updated flags, in miga/attacks/base.py)."""
    trace = _Trace()
    trace.record(torch.tensor([1.0, 3.0]), torch.tensor([True, True]), torch.tensor([True, True]))
    with HostReads() as reads:
        assert trace.history() == [2.0]
    return reads


def test_the_package_root_is_the_imported_package_directory() -> None:
    assert PACKAGE_ROOT == Path(miga.__file__).resolve().parent


def test_a_read_inside_the_package_counts_with_its_site() -> None:
    reads = _trace_reads()
    assert reads.count == 2
    assert dict(reads.sites) == {"miga/attacks/base.py:history": 2}


def test_a_file_outside_the_package_whose_path_contains_miga_does_not_count(tmp_path) -> None:
    # the original trap: torch inside a venv inside a checkout folder named miga
    venv_torch = _module_at(tmp_path / "miga" / ".venv" / "lib" / "torch" / "optim" / "adam.py")
    # and a file laid out like the package itself, but in another tree
    look_alike = _module_at(tmp_path / "clone" / "miga" / "miga" / "attacks" / "base.py")
    value = torch.tensor(2.0)
    with HostReads() as reads:
        venv_torch.read(value)
        look_alike.read(value)
    assert reads.count == 0
    with HostReads(root=None) as every:  # counting every caller sees them: they did read
        venv_torch.read(value)
        look_alike.read(value)
    assert every.count == 4


def test_another_root_counts_the_files_under_it_only(tmp_path) -> None:
    root = tmp_path / "miga"
    inside = _module_at(root / "reader.py")
    beside = _module_at(tmp_path / "miga_other" / "reader.py")  # a name sharing the prefix
    with HostReads(root=root) as reads:
        inside.read(torch.tensor(1.0))
        beside.read(torch.tensor(1.0))
    assert dict(reads.sites) == {"miga/reader.py:read": 2}


def test_a_boolean_mask_index_counts_and_an_integer_index_does_not(tmp_path) -> None:
    picker = _module_at(tmp_path / "pkg" / "picker.py", "def pick(t, i):\n    return t[i]\n")
    t = torch.arange(4.0)
    with HostReads(root=tmp_path / "pkg") as reads:
        picker.pick(t, t > 1)  # the result's shape depends on the values: a read
        picker.pick(t, torch.tensor([0, 2]))
    assert reads.count == 1
