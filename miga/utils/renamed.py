"""Command-line keys that were renamed or removed: refused with the new name, before Hydra.

Hydra alone answers an old key with "Key 'dataset' is not in struct", which does not say what
to type instead; the entry points check their overrides here first.
"""

from __future__ import annotations

from collections.abc import Sequence

#: old key (or key prefix ending in ".") → what replaced it.
RENAMED: dict[str, str] = {
    "dataset.dataset.": "dataset.",  # a dataset config is the Dataset: `dataset.root=…`
    "dataset.batch_size": "loader.batch_size",
    "dataset.num_workers": "loader.num_workers",
    "mi_estimator.target_class": "attack.target_class",  # targeting is the attack's choice
    # train_critic's evaluation pairs; `heldout` names only the judges (metrics.heldout_*)
    "heldout": "validation",
}
#: removed key → why.
REMOVED: dict[str, str] = {
    "dataset.task": "the task is chosen by `task=` presets and the `metrics` group",
}


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def renamed_key_error(overrides: Sequence[str]) -> str | None:
    """The message for the first override that uses an old key, or None when all are current."""
    for override in overrides:
        key = _key(override)
        for old, new in RENAMED.items():
            if key == old or (old.endswith(".") and key.startswith(old)):
                current = new + key[len(old) :] if old.endswith(".") else new
                return f"`{key}` was renamed: use `{current}` (in `{override}`)"
        if key in REMOVED:
            return f"`{key}` was removed: {REMOVED[key]} (in `{override}`)"
    return None


def refuse_renamed_keys(overrides: Sequence[str]) -> None:
    """Exit (status 1) with one line naming the new key when an override uses an old one."""
    message = renamed_key_error(overrides)
    if message is not None:
        raise SystemExit(f"miga: error: {message}")
