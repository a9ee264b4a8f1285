"""What each config group's object must do, checked when a cell starts (docs/extending.md).

A researcher's own denoiser, downstream model or dataset comes in through a `_target_` of their own
(`hydra.searchpath=[file://my_configs] denoiser=my_net`). Deep inside the attack loop a broken
contract shows up as a shape error or, worse, as plausible wrong numbers; here it stops the cell
before any work, with an error naming the group, its `_target_` and the rule it breaks.
Each check runs the object once on a small probe (2 images, 32×64: a multiple of the 8/16/32
that down-sampling networks need), from a private generator: the cell's random streams are not
touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from miga.attacks.base import Attack
from miga.attacks.terms import LossTerm
from miga.denoisers.wrapper import Denoiser

PROBE_SHAPE = (2, 3, 32, 64)
#: How far outside [0,1] an output may stray (float rounding of a clamp-free network).
RANGE_TOLERANCE = 1e-4


class ContractError(TypeError):
    """An object built from a config group does not meet that group's contract."""

    def __init__(self, group: str, target: str | None, rule: str) -> None:
        where = f"{group} (_target_: {target})" if target else group
        super().__init__(f"{where} breaks the {group} contract: {rule} (docs/extending.md)")
        self.group, self.target, self.rule = group, target, rule


def probe_images() -> Tensor:
    """Two [0,1] RGB images from a private generator (the global RNG is left alone)."""
    return torch.rand(PROBE_SHAPE, generator=torch.Generator().manual_seed(0))


def check_denoiser(denoiser: Any, target: str | None = None, group: str = "denoiser") -> None:
    """An `nn.Module` mapping (B,3,H,W) float in [0,1] to the same shape in [0,1]; a non-blind
    network (`non_blind = True`, called as `net(x, sigma)`) only as the `net` of
    `miga.denoisers.Denoiser`, which tells it the noise's σ."""
    fail = lambda rule: ContractError(group, target, rule)  # noqa: E731
    if not isinstance(denoiser, nn.Module):
        raise fail(f"must be a torch.nn.Module, got {type(denoiser).__name__}")
    if getattr(denoiser, "non_blind", False) and not isinstance(denoiser, Denoiser):
        raise fail(
            "non_blind = True (it takes the noise level as a second argument): use it as the "
            "`net` of miga.denoisers.Denoiser with noise_level: ${noise.sigma}, which passes σ"
        )
    x = probe_images()
    with torch.no_grad():
        out = denoiser(x)
    if not isinstance(out, Tensor):
        raise fail(f"forward must return one tensor, got {type(out).__name__}")
    if out.shape != x.shape:
        raise fail(f"maps (B,3,H,W) to the same shape: {tuple(x.shape)} gave {tuple(out.shape)}")
    if not out.is_floating_point() or not torch.isfinite(out).all():
        raise fail("output must be finite floats")
    low, high = out.min().item(), out.max().item()
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise fail(
            f"output must lie in [0,1] (RGB, like its input), got [{low:.3g}, {high:.3g}]; "
            "miga.denoisers.Denoiser (clamp: true) clamps it"
        )


def check_downstream(
    downstream: Any, target: str | None = None, labels: bool = False, group: str = "downstream"
) -> int | None:
    """An `nn.Module` (or none) taking (B,3,H,W) [0,1] RGB and returning one entry per image:
    a tensor (B, …) or a list of B strings (OCR). Where the data carry labels it is a classifier:
    logits (B, C), with `class_names` (if set) naming the C classes. Returns C (labels only)."""
    if downstream is None:
        return None
    fail = lambda rule: ContractError(group, target, rule)  # noqa: E731
    if not isinstance(downstream, nn.Module):
        raise fail(f"must be a torch.nn.Module, got {type(downstream).__name__}")
    with torch.no_grad():
        out = downstream(probe_images())
    batch = PROBE_SHAPE[0]
    if isinstance(out, list):
        if len(out) != batch or not all(isinstance(s, str) for s in out):
            raise fail(f"a list output must hold one string per image ({batch})")
        return None
    if not isinstance(out, Tensor) or out.ndim < 2 or len(out) != batch:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise fail(f"must return (B, …) per image (B={batch}) or B strings, got {shape}")
    if labels and out.ndim != 2:
        raise fail(f"the dataset has labels: it must return logits (B, C), got {tuple(out.shape)}")
    names = getattr(downstream, "class_names", None)
    if labels and names is not None and len(names) != out.shape[1]:
        raise fail(f"class_names has {len(names)} names for {out.shape[1]} logits")
    return out.shape[1] if labels else None


def check_dataset(
    dataset: Any, target: str | None = None, classes: int | None = None, group: str = "dataset"
) -> bool:
    """A map-style `Dataset` of dicts: `image` (3,H,W) float in [0,1], `index` its own position
    (per-sample random streams are seeded from it), optionally `label` (an int class, < the task
    model's C) and `reference` (an image like `image`). Returns whether items carry labels."""
    fail = lambda rule: ContractError(group, target, rule)  # noqa: E731
    if not isinstance(dataset, Dataset) or not hasattr(dataset, "__len__"):
        raise fail(f"must be a map-style torch Dataset with __len__, got {type(dataset).__name__}")
    if len(dataset) == 0:
        return False
    item = dataset[0]
    if not isinstance(item, Mapping):
        raise fail(f"items must be dicts with `image` and `index`, got {type(item).__name__}")
    for key in ("image", "index"):
        if key not in item:
            raise fail(f"items must have `{key}`; item 0 has {sorted(item)}")
    for key in ("image", "reference"):
        image = item.get(key)
        if image is None:
            continue
        if not isinstance(image, Tensor) or image.ndim != 3 or image.shape[0] != 3:
            shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
            raise fail(f"`{key}` must be a (3,H,W) RGB tensor, got {shape}")
        if not image.is_floating_point() or image.min() < 0 or image.max() > 1:
            raise fail(f"`{key}` must be float in [0,1]")
    if int(item["index"]) != 0:
        raise fail(f"`index` must be the item's own position: item 0 has index {item['index']}")
    label = item.get("label")
    if label is not None:
        value = int(label)
        if value < 0 or (classes is not None and value >= classes):
            raise fail(f"`label` {value} is not a class of the downstream model (0…{classes})")
    return label is not None


def check_attack(attack: Any, target: str | None = None, group: str = "attack") -> None:
    """A `miga.attacks.base.Attack` (the one attack loop, with per-sample bookkeeping) whose
    terms are `LossTerm`s: `forward(state: StepState)` returns a (B,) per-sample loss."""
    if not isinstance(attack, Attack):
        raise ContractError(
            group, target, f"must be a miga.attacks.base.Attack, got {type(attack).__name__}"
        )
    for name, term in attack.terms.items():
        if not isinstance(term, LossTerm):
            raise ContractError(
                group,
                target,
                f"term `{name}` must be a miga.attacks.terms.LossTerm, got {type(term).__name__}",
            )


def check_cell(module: Any, dataset: Any, targets: Mapping[str, str | None]) -> None:
    """Every contract of one cell: its dataset, denoiser(s), downstream model(s) and attack.
    `targets` names each group's `_target_` for the messages."""
    labels = check_dataset(dataset, targets.get("dataset"), classes=None)
    check_denoiser(module.denoiser, targets.get("denoiser"))
    classes = check_downstream(module.downstream, targets.get("downstream"), labels=labels)
    if classes is not None:
        check_dataset(dataset, targets.get("dataset"), classes=classes)
    if module.surrogate_denoiser is not None:
        check_denoiser(module.surrogate_denoiser, None, group="surrogate.denoiser")
    if module.surrogate_downstream is not None:
        check_downstream(module.surrogate_downstream, None, labels, "surrogate.downstream")
    check_attack(module.attack, targets.get("attack"))


def config_targets(cfg: Any) -> dict[str, str | None]:
    """Each checked group's `_target_` in a composed cell config."""
    groups = ("dataset", "denoiser", "downstream", "attack")
    return {g: (cfg.get(g) or {}).get("_target_") for g in groups}
