"""Threat models: the set δ may live in, as a projection applied after every step.

Every budget also keeps x_n+δ inside the image box, so the perturbed input is one a camera or
file could hold — *as far as the budget allows*. The box is [min(0, x_n), max(1, x_n)] per value:
where x_n itself lies outside [0,1] (unclipped noise, `noise.clip=false`, the protocol of the
official Restormer test scripts) δ may move that value towards [0,1] but never further out, and
it never has to: δ = 0 is always feasible. So ‖δ‖ ≤ ε holds for every input, and the box is a
per-value interval that contains 0 — intersecting with it only shrinks |δ| value by value, which
keeps every norm ball (L∞, L2, the zero-mean balls) satisfied.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from miga.utils.seeding import per_sample_rand, per_sample_randn
from miga.utils.tensors import per_sample, sample_norm


def image_box(noisy: Tensor) -> tuple[Tensor, Tensor]:
    """Per-value bounds (low ≤ 0 ≤ high) on δ that keep x_n+δ in [min(0, x_n), max(1, x_n)]."""
    return -noisy.clamp(min=0.0), (1.0 - noisy).clamp(min=0.0)


def _checked_epsilon(epsilon: object) -> float:
    """ε as a float ≥ 0, or an error naming the config key."""
    try:
        value = float(epsilon)
    except (TypeError, ValueError):
        raise TypeError(f"budget epsilon must be a number, got {epsilon!r}") from None
    if not value >= 0:
        raise ValueError(f"budget epsilon must be >= 0, got {epsilon}")
    return value


class Budget:
    """Base threat model: no norm constraint, only the valid-image constraint."""

    norm: str = "none"
    epsilon: float = float("inf")

    def project(self, delta: Tensor, noisy: Tensor) -> Tensor:
        """Project δ onto the budget, then onto valid images."""
        return self.projector(noisy)(delta)

    def projector(self, noisy: Tensor) -> Callable[[Tensor], Tensor]:
        """`project` for one batch's x_n, with what depends on x_n alone (the image box)
        computed once: the attack loop projects every step."""
        low, high = image_box(noisy)
        return lambda delta: torch.clamp(self._project_norm(delta), low, high)

    def _project_norm(self, delta: Tensor) -> Tensor:
        return delta

    def random_start(self, noisy: Tensor, index: Tensor, seed: int) -> Tensor:
        """A reproducible random δ inside the budget (PGD's random start)."""
        raise ValueError(f"budget '{self.norm}' has no bounded set to start at random in")

    def l2_radius(self, numel: int) -> float:
        """Radius of the smallest L2 ball holding this budget's set, for images of `numel`
        values: what an L2 attack at equal budget may use (∞ without a bound)."""
        return math.inf

    def size(self, delta: Tensor) -> Tensor:
        """Each sample's size (B,) in the norm this budget bounds (L2 unless it says)."""
        return delta.flatten(1).norm(dim=1)

    def bound(self, numel: int) -> float:
        """The bound `size` is held to, for images of `numel` values."""
        return self.l2_radius(numel)


class Unbounded(Budget):
    """No ε-ball: the loss terms alone keep δ small (MIGA's unknown-task default)."""


class NoProjection(Unbounded):
    """No projection at all, not even onto the image box: δ may drift outside it (`budget=none`).

    The MIGA authors' unknown-task script never projects δ; it only clamps x_n+δ to [0,1]
    inside the forward (`attack.clamp_input=true`), so δ itself can grow past the box while
    the image the denoiser sees stays valid.
    """

    def __init__(self, epsilon: None = None) -> None:
        # `epsilon: null` lets a preset replace the shared budget: Hydra merges an attack's
        # `budget:` block into the interpolated `${budget}`, whose epsilon would otherwise stay.
        if epsilon is not None:
            raise ValueError(f"budget NoProjection has no epsilon, got epsilon={epsilon}")

    def projector(self, noisy: Tensor) -> Callable[[Tensor], Tensor]:
        return lambda delta: delta


class LinfBall(Budget):
    """‖δ‖∞ ≤ ε (ε in [0,1] units: 4/255 = 0.0157)."""

    norm = "linf"

    def __init__(self, epsilon: float) -> None:
        self.epsilon = _checked_epsilon(epsilon)

    def _project_norm(self, delta: Tensor) -> Tensor:
        return delta.clamp(-self.epsilon, self.epsilon)

    def projector(self, noisy: Tensor) -> Callable[[Tensor], Tensor]:
        """Ball and box are both per-value intervals: one clamp to their intersection."""
        low, high = image_box(noisy)
        low, high = low.clamp(min=-self.epsilon), high.clamp(max=self.epsilon)
        return lambda delta: torch.clamp(delta, low, high)

    def l2_radius(self, numel: int) -> float:
        return self.epsilon * math.sqrt(numel)  # the ball through the cube's corners

    def size(self, delta: Tensor) -> Tensor:
        return delta.flatten(1).abs().amax(dim=1)

    def bound(self, numel: int) -> float:
        return self.epsilon

    def random_start(self, noisy: Tensor, index: Tensor, seed: int) -> Tensor:
        uniform = per_sample_rand(noisy.shape[1:], index, seed, "random_start", noisy)
        return self.project((uniform * 2 - 1) * self.epsilon, noisy)


class L2Ball(Budget):
    """‖δ‖₂ ≤ ε per image (ε in [0,1] units over all C·H·W values)."""

    norm = "l2"

    def __init__(self, epsilon: float) -> None:
        self.epsilon = _checked_epsilon(epsilon)

    def _project_norm(self, delta: Tensor) -> Tensor:
        scale = torch.clamp(self.epsilon / (per_sample(sample_norm(delta), delta) + 1e-12), max=1.0)
        return delta * scale

    def l2_radius(self, numel: int) -> float:
        return self.epsilon

    def random_start(self, noisy: Tensor, index: Tensor, seed: int) -> Tensor:
        """A direction uniform on the sphere (a normalised Gaussian draw) at a radius uniform
        in [0, ε] (torchattacks' PGDL2 start), then the image box."""
        gaussian = per_sample_randn(noisy.shape[1:], index, seed, "random_start", noisy)
        radius = per_sample(per_sample_rand((1,), index, seed, "random_radius", noisy), noisy)
        direction = gaussian / (per_sample(sample_norm(gaussian), gaussian) + 1e-12)
        return self.project(direction * radius * self.epsilon, noisy)
