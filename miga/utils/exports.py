"""A package's public classes at its top (`miga.attacks.MIGA`), imported when first used.

Configs name a class by its package (`_target_: miga.attacks.MIGA`, the way timm and
torchattacks export theirs), not by the file it lives in. Importing every submodule in the
package's `__init__` would make `import miga.metrics.summary` pull in torch models, and would
turn any import between two packages into a circle at import time; a PEP 562 module
`__getattr__` gives the same names with neither cost: a name's submodule is imported the first
time the name is read, then cached in the package.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, namespace: dict[str, Any], exports: Mapping[str, Sequence[str]]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """`__all__`, `__getattr__` and `__dir__` for `package` exporting `exports`.

    `exports` maps each submodule (relative to `package`) to the public names it defines;
    `namespace` is the package's `globals()`, where a name is cached once imported.
    """
    where = {name: module for module, names in exports.items() for name in names}
    if len(where) != sum(len(names) for names in exports.values()):
        raise ValueError(f"{package}: a name is exported by two submodules")

    def __getattr__(name: str) -> Any:  # noqa: N807 (PEP 562)
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:  # noqa: N807 (PEP 562)
        return sorted(set(namespace) | set(where))

    return sorted(where), __getattr__, __dir__
