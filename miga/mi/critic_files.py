"""A critic's weights from a file: the one safe reader (`miga.checkpoints`), then the critic's
own key names (a prefix stripped, the MIGA authors' layout renamed) and strict matching.

Kept apart from the estimators: reading files is the checkpoint layer's business, the
estimators only receive the state dict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from torch import Tensor, nn

from miga.checkpoints import CheckpointError, read_checkpoint, state_dict_mismatch

__all__ = ["CriticCheckpointError", "Layout", "critic_state_from_file"]


class CriticCheckpointError(CheckpointError):
    """A critic checkpoint is missing, unreadable, unsafe or does not match the critic's layout."""


def _find_prefix(state: dict[str, Tensor], expected: list[str], path: Path) -> str:
    """The prefix p with every expected key k present as p+k ("" when the file is plain)."""
    if all(k in state for k in expected):
        return ""
    first = expected[0]
    candidates = {
        key[: -len(first)]
        for key in state
        if key.endswith(first) and key[: -len(first)].endswith(".")
    }
    found = sorted(p for p in candidates if all(p + k in state for k in expected))
    if len(found) > 1:
        raise CriticCheckpointError(
            f"{path}: several sub-modules match the critic ({found}); pass checkpoint_prefix"
        )
    return found[0] if found else ""


Layout = Literal["miga", "authors"]


def critic_state_from_file(
    path: str | Path, critic: nn.Module, prefix: str | None = None, layout: Layout | None = None
) -> dict[str, Tensor]:
    """Read `path` and return exactly the critic's state dict, or raise naming the file.

    Accepts a plain state dict or a Lightning checkpoint (its `state_dict`); the keys are
    stripped of `prefix` (e.g. ``"estimator.critic."``; None: found automatically as the prefix
    under which all of the critic's keys appear, "" for a plain file). Keys under the prefix that
    the critic lacks, missing keys and shape mismatches are errors (strict loading).

    `layout` names the file's key names: `miga` (ours), `authors` (the MIGA authors'
    `mine_model.pth`: conv1..5, bn1..5, fc1..3, renamed by the critic's `from_authors_layout`),
    None: `authors` when the file has their names, else `miga`.
    """
    path = Path(path)
    try:  # the one safe reader: a Lightning checkpoint's hyper-parameters never run code
        state = read_checkpoint(path)
    except CheckpointError as err:
        raise CriticCheckpointError(str(err)) from err
    if layout not in (None, "miga", "authors"):
        raise ValueError(
            f"mi_estimator.checkpoint_layout must be miga, authors or null, got {layout!r}"
        )
    rename = getattr(critic, "from_authors_layout", None)
    if layout is None:
        recognise = getattr(critic, "looks_like_authors_layout", None)
        layout = "authors" if recognise is not None and recognise(state) else "miga"
    if layout == "authors":
        if rename is None:
            raise CriticCheckpointError(
                f"{path}: checkpoint_layout=authors, but {type(critic).__name__} has no "
                "authors' layout (only ConvPairCritic, the authors' critic, has one)"
            )
        state = rename(state)
    expected = critic.state_dict()
    if not expected:
        raise CriticCheckpointError(f"{path}: the critic {type(critic).__name__} has no weights")
    if prefix is None:
        prefix = _find_prefix(state, list(expected), path)
    stripped = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    mismatch = state_dict_mismatch(stripped, expected, owner="critic", model=critic)
    if mismatch:
        raise CriticCheckpointError(
            f"{path} does not match {type(critic).__name__} (prefix {prefix!r}, "
            f"{len(expected)} keys expected, {len(stripped)} found): {mismatch}"
        )
    return stripped
