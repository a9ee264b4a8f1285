"""Threat models of the denoising-attack literature, as `Budget` subclasses.

ObsAtk (Yan et al. 2022) and denoising-PGD (Ning et al. 2023) bound δ in L2 with a radius that
grows with the image, ρ = ε·√(#values), and constrain its *shape* so that it looks like noise
rather than a brightness or colour shift (a constant offset is not a visual artefact a denoiser
should be blamed for). Their radius is derived from the experiment's shared budget (`inner`: the
ball is the smallest L2 ball holding it), so the comparison stays at equal budget whichever norm
that budget uses.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from miga.attacks.budgets import Budget, image_box
from miga.utils.seeding import per_sample_rand, per_sample_randn
from miga.utils.tensors import per_sample, sample_norm


class CircumscribedL2Ball(Budget):
    """‖δ‖₂ ≤ ρ, ρ = the radius of the smallest L2 ball holding `inner`'s set, per image size.

    With `inner` = L∞ ε this is ObsAtk's ρ = ε·√(C·H·W) (the paper writes ε/255 with ε in 8-bit
    units); with `inner` = L2 ε, ρ = ε. The radius is computed from each batch's image size, so
    one config serves 128 px demo crops and 224 px ImageNet alike.
    """

    norm = "l2"

    def __init__(self, inner: Budget) -> None:
        self.inner = inner
        self.epsilon = inner.epsilon

    def radius(self, numel: int | Tensor) -> float:
        """ρ for an image of `numel` values (or for the first image of a batch tensor)."""
        if isinstance(numel, Tensor):
            numel = numel[0].numel()
        return self.inner.l2_radius(int(numel))

    def l2_radius(self, numel: int) -> float:
        return self.radius(numel)

    def _project_norm(self, delta: Tensor) -> Tensor:
        norm = per_sample(sample_norm(delta), delta)
        return delta * torch.clamp(self.radius(delta) / (norm + 1e-12), max=1.0)

    def random_start(self, noisy: Tensor, index: Tensor, seed: int) -> Tensor:
        """A Gaussian direction at a uniform fraction of ρ, then projected (seeded per sample)."""
        direction = per_sample_randn(noisy.shape[1:], index, seed, "random_start", noisy)
        direction = direction / (per_sample(sample_norm(direction), noisy) + 1e-12)
        fraction = per_sample_rand((1,), index, seed, "random_radius", noisy)
        return self.project(direction * per_sample(fraction, noisy) * self.radius(noisy), noisy)


def zero_sum_clip(delta: Tensor, low: Tensor, high: Tensor, iterations: int = 30) -> Tensor:
    """Euclidean projection of each row of `delta` (B, G, M) onto {Σ_m δ = 0, low ≤ δ ≤ high}.

    The projection is clip(δ − μ, low, high) for the scalar shift μ per row that makes the sum
    zero. The sum is monotone in μ: bisection finds which values clip, then μ is solved exactly
    on the values that do not. Needs low ≤ 0 ≤ high.
    """
    clip = lambda mu: torch.minimum(torch.maximum(delta - mu, low), high)  # noqa: E731
    lo_mu = (delta - high).amin(dim=2, keepdim=True)  # every value clipped at high: sum ≥ 0
    hi_mu = (delta - low).amax(dim=2, keepdim=True)  # every value clipped at low: sum ≤ 0
    for _ in range(iterations):
        mid = (lo_mu + hi_mu) / 2
        positive = clip(mid).sum(dim=2, keepdim=True) > 0
        lo_mu = torch.where(positive, mid, lo_mu)
        hi_mu = torch.where(positive, hi_mu, mid)
    mu = (lo_mu + hi_mu) / 2
    shifted = delta - mu
    at_low, at_high = shifted <= low, shifted >= high
    free = ~(at_low | at_high)
    n_free = free.sum(dim=2, keepdim=True)
    pinned = torch.where(at_low, low, torch.where(at_high, high, torch.zeros_like(delta)))
    exact = (
        torch.where(free, delta, torch.zeros_like(delta)).sum(2, keepdim=True)
        + pinned.sum(2, keepdim=True)
    ) / n_free.clamp_min(1)
    return clip(torch.where(n_free > 0, exact, mu))


class ZeroMeanL2Ball(CircumscribedL2Ball):
    """ObsAtk's set: ‖δ‖₂ ≤ ρ and mean(δ) = 0 over the image, x_n+δ a valid image.

    Projection (Yan et al.'s two steps, made to respect [0,1]): the Euclidean projection onto
    {zero mean} ∩ {x_n+δ ∈ [0,1]} (`zero_sum_clip`), then a radial rescale into the ball, which
    keeps both the zero mean and the valid range because the box contains δ = 0.
    """

    norm = "l2_zero_mean"
    #: zero mean per colour channel (True) or over all values of the image (False, ObsAtk)
    per_channel = False

    def value_cap(self) -> float | None:
        """An optional bound on |δ| per value (none for ObsAtk)."""
        return None

    def projector(self, noisy: Tensor) -> Callable[[Tensor], Tensor]:
        return lambda delta: self.project(delta, noisy)

    def project(self, delta: Tensor, noisy: Tensor) -> Tensor:
        low, high = image_box(noisy)
        cap = self.value_cap()
        if cap is not None:
            low, high = low.clamp(min=-cap), high.clamp(max=cap)
        groups = delta.shape[1] if self.per_channel else 1
        shape = (delta.shape[0], groups, -1)
        centred = zero_sum_clip(delta.reshape(shape), low.reshape(shape), high.reshape(shape))
        return self._project_norm(centred.view_as(delta))


class GaussianLikeL2Ball(ZeroMeanL2Ball):
    """denoising-PGD's set, as defined here: the perturbed noise stays Gaussian-like.

    δ must satisfy, per image,
      1. ‖δ‖₂ ≤ ρ (the circumscribed L2 radius of the shared budget, as for ObsAtk);
      2. Σ_{h,w} δ[c,h,w] = 0 for each colour channel c: the total noise x_n+δ−x keeps the
         per-channel mean of the Gaussian draw (no colour cast, no brightness shift);
      3. |δ[i]| ≤ `cap_sigmas`·σ/255 for every value: no value of the total noise moves by more
         than a fraction of the noise's own standard deviation, so its histogram stays close to
         N(0, σ²) (no outliers, no heavy tails a noise-level estimator would flag);
      4. x_n+δ ∈ [0,1].
    Projection: per channel, the exact projection onto 2 ∩ 3 ∩ 4 (shift-and-clip, bisection on
    the shift), then a radial rescale into 1, which keeps 2–4 because their set contains 0.
    """

    norm = "l2_gaussian_like"
    per_channel = True

    def __init__(self, inner: Budget, sigma: float, cap_sigmas: float = 0.5) -> None:
        super().__init__(inner)
        if not sigma > 0 or not cap_sigmas > 0:
            raise ValueError(f"sigma and cap_sigmas must be > 0, got {sigma}, {cap_sigmas}")
        self.sigma = float(sigma)
        self.cap_sigmas = float(cap_sigmas)

    def value_cap(self) -> float:
        return self.cap_sigmas * self.sigma / 255.0


__all__ = [
    "CircumscribedL2Ball",
    "GaussianLikeL2Ball",
    "ZeroMeanL2Ball",
    "zero_sum_clip",
]
