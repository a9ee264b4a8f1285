"""Neural mutual-information estimators built on a critic network (`miga.mi.critics`).

All share `CriticEstimator`: a `critic` T(a, b), an optional critic `checkpoint` loaded strictly
and then frozen (`requires_grad_(False)`, kept in eval(): the authors' critic has BatchNorm), and
the MIGA unknown-task attack term `attack_loss(state) = −T(D(x_n+δ), x_ref)` per sample, which
pulls the denoised output towards the reference image (docs/architecture.md §2).

Bounds (nats; a = first argument, b = second; B = batch size):

- `MINE`   Donsker–Varadhan  E_P[T] − log E_Q[e^T]   (Belghazi et al. 2018), EMA-corrected gradient
- `MINEf`  f-divergence      E_P[T] − E_Q[e^(T−1)]   (Belghazi et al. 2018, "MINE-f")
- NWJ      the same bound as MINE-f (Nguyen–Wainwright–Jordan): `mi_estimator=nwj` is MINE-f on
           all off-diagonal pairs, as Poole et al. 2019 evaluate it
- `InfoNCE` mean_i [T_ii − log mean_j e^(T_ij)] ≤ log B   (van den Oord et al. 2018)
- `SMILE`  E_P[T] − log E_Q[clip(e^T, e^−τ, e^τ)], critic trained with the JS bound
           (Song & Ermon 2020)
- `CLUB`   upper bound E_P[log q(b|a)] − E_Q[log q(b|a)] with a variational Gaussian q(b|a)
           trained by maximum likelihood (Cheng et al. 2020)

P is the joint (the paired samples), Q the product of marginals. Samples of Q come from the
batch itself (`marginals`):

- ``"pairs"``: every off-diagonal pair (a_i, b_j), i ≠ j, of `critic.pair_scores` — B(B−1)
  samples, the lowest variance; B² critic passes for a concatenation critic, one matrix
  product for a separable one.
- ``"shuffle"``: one random derangement π of the batch, pairs (a_i, b_π(i)) — B samples, B
  extra critic passes, as in the MINE paper and the MIGA authors' code. A derangement (random
  permutation followed by a cyclic shift) never pairs a sample with its own partner.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from miga.mi.base import AttackStep, MIEstimator
from miga.mi.critic_files import CriticCheckpointError, Layout, critic_state_from_file

log = logging.getLogger(__name__)

Marginals = Literal["pairs", "shuffle"]


# --------------------------------------------------------------------------- helpers


def logmeanexp(x: Tensor) -> Tensor:
    """log mean exp over all elements, computed stably."""
    return torch.logsumexp(x.flatten(), dim=0) - math.log(x.numel())


def derangement(n: int, device: torch.device | None = None) -> Tensor:
    """A random permutation with no fixed point (random order, then a cyclic shift by one)."""
    if n < 2:
        raise ValueError("shuffled marginals need a batch of at least 2 pairs")
    order = torch.randperm(n, device=device)
    perm = torch.empty_like(order)
    perm[order] = order.roll(-1)
    return perm


# --------------------------------------------------------------------------- base class


class CriticEstimator(MIEstimator):
    """An MI estimator around a critic network T(a, b).

    `checkpoint`: a critic state dict (plain, or a Lightning checkpoint's `state_dict` with
    `checkpoint_prefix` stripped, found automatically when None), loaded strictly and then
    frozen. `marginals`: how samples of the product of marginals are drawn (module docstring).
    `checkpoint_layout`: the file's key names, `miga`, `authors` (the MIGA authors'
    `mine_model.pth`, `critic_state_from_file`) or None (recognised from the keys).
    `allow_random`: let an attack go through a critic that loaded no checkpoint (frozen at its
    random initialisation, for smoke tests); without it `prepare_for_attack` raises.
    """

    def __init__(
        self,
        critic: nn.Module,
        checkpoint: str | None = None,
        checkpoint_prefix: str | None = None,
        marginals: Marginals = "pairs",
        allow_random: bool = False,
        checkpoint_layout: Layout | None = None,
    ) -> None:
        super().__init__()
        if marginals not in ("pairs", "shuffle"):
            raise ValueError(f"marginals must be 'pairs' or 'shuffle', got {marginals!r}")
        self.critic = critic
        self.marginals = marginals
        self.frozen = False
        self.allow_random = allow_random
        if checkpoint is not None:
            self.load_critic(checkpoint, prefix=checkpoint_prefix, layout=checkpoint_layout)

    # -- weights ------------------------------------------------------------------------------

    def load_critic(
        self, path: str | Path, prefix: str | None = None, layout: Layout | None = None
    ) -> CriticEstimator:
        """Load the critic's weights strictly from `path`, then freeze it."""
        state = critic_state_from_file(path, self.critic, prefix, layout)
        self.critic.load_state_dict(state, strict=True)
        log.info("loaded %s critic from %s", type(self.critic).__name__, path)
        return self.freeze()

    def freeze(self) -> CriticEstimator:
        """No gradients into the critic and eval() for good (BatchNorm, Dropout)."""
        self.critic.requires_grad_(False)
        self.critic.eval()
        self.frozen = True
        return self

    def prepare_for_attack(self) -> CriticEstimator:
        """Freeze the critic before an attack goes through it; refuse an untrained one.

        A critic that loaded no checkpoint scores at random, so attacking through it measures
        nothing: that is an error unless `allow_random` (smoke tests) asks for it explicitly.
        """
        if self.frozen:
            return self
        if not self.allow_random:
            raise CriticCheckpointError(
                f"{type(self).__name__}: the attack needs a trained critic; set "
                "`mi_estimator.checkpoint=<critic file>` (see `python -m miga.train_critic`), or "
                "`mi_estimator.allow_random=true` to attack through random weights (smoke tests)"
            )
        warnings.warn(
            f"{type(self).__name__}: attacking through a RANDOM critic "
            "(mi_estimator.allow_random=true), its scores are untrained",
            stacklevel=2,
        )
        return self.freeze()

    def train(self, mode: bool = True) -> CriticEstimator:
        super().train(mode)
        if self.frozen:
            self.critic.eval()
        return self

    # -- scores -------------------------------------------------------------------------------

    def scores(self, a: Tensor, b: Tensor) -> Tensor:
        """Per-pair critic scores T(a_i, b_i), shape (B,)."""
        return self.critic(a, b)

    def joint_and_marginal(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """Critic scores on the joint samples (B,) and on samples of the marginals (flat)."""
        n = a.shape[0]
        if self.marginals == "pairs":
            matrix = self.critic.pair_scores(a, b)
            off_diagonal = ~torch.eye(n, dtype=torch.bool, device=matrix.device)
            return matrix.diagonal(), matrix[off_diagonal]
        perm = derangement(n, device=b.device)
        both = self.critic(torch.cat([a, a]), torch.cat([b, b[perm]]))
        return both[:n], both[n:]

    def attack_loss(self, state: AttackStep) -> Tensor:
        """−T(D(x_n+δ), x_ref) per sample, shape (B,): pulls the output towards the reference."""
        reference = state.inputs.reference
        if reference is None:
            raise ValueError(
                f"{type(self).__name__}.attack_loss needs reference images "
                "(an unknown-task dataset of (image, altered reference) pairs)"
            )
        self.prepare_for_attack()
        return -self.scores(state.attacked, reference)


# --------------------------------------------------------------------------- lower bounds


class MINE(CriticEstimator):
    """Donsker–Varadhan bound with the MINE bias-corrected gradient (Belghazi et al. 2018).

    `estimate` returns the plain DV value E_P[T] − log E_Q[e^T]. `training_loss` has the same
    value (negated) but replaces the gradient of log E_Q[e^T], E_Q[e^T ∇T] / E_Q[e^T], whose
    minibatch version is biased, by E_Q[e^T ∇T] / m, where m is an exponential moving average of
    the minibatch E_Q[e^T] with rate `ema_rate` (updated with the current batch first, then
    used; kept in log space). `ema_rate=None` gives the naive gradient. The average advances only
    when `training_loss` runs with gradients enabled.
    """

    def __init__(
        self,
        critic: nn.Module,
        checkpoint: str | None = None,
        checkpoint_prefix: str | None = None,
        marginals: Marginals = "shuffle",
        ema_rate: float | None = 0.01,
        allow_random: bool = False,
        checkpoint_layout: Layout | None = None,
    ) -> None:
        super().__init__(
            critic, checkpoint, checkpoint_prefix, marginals, allow_random, checkpoint_layout
        )
        if ema_rate is not None and not 0.0 < ema_rate <= 1.0:
            raise ValueError(f"ema_rate must be in (0, 1] or None, got {ema_rate}")
        self.ema_rate = ema_rate
        self.register_buffer("log_ema", torch.tensor(float("nan")))

    def estimate(self, a: Tensor, b: Tensor) -> Tensor:
        joint, marginal = self.joint_and_marginal(a, b)
        return joint.mean() - logmeanexp(marginal)

    def _update_ema(self, log_mean: Tensor) -> Tensor:
        rate = self.ema_rate
        if torch.isnan(self.log_ema):
            self.log_ema.copy_(log_mean)
        else:
            self.log_ema.copy_(
                torch.logaddexp(self.log_ema + math.log1p(-rate), log_mean + math.log(rate))
                if rate < 1.0
                else log_mean
            )
        return self.log_ema.clone()

    def training_loss(self, a: Tensor, b: Tensor) -> Tensor:
        joint, marginal = self.joint_and_marginal(a, b)
        log_mean = logmeanexp(marginal)
        if self.ema_rate is None or not torch.is_grad_enabled():
            return -(joint.mean() - log_mean)
        log_ema = self._update_ema(log_mean.detach())
        ratio = torch.exp(log_mean - log_ema)  # minibatch E_Q[e^T] / m, gradient ∇E_Q[e^T] / m
        corrected = log_mean.detach() + ratio - ratio.detach()
        return -(joint.mean() - corrected)


class MINEf(CriticEstimator):
    """f-divergence (MINE-f) bound E_P[T] − E_Q[e^(T−1)]; unbiased minibatch gradients."""

    def __init__(
        self,
        critic: nn.Module,
        checkpoint: str | None = None,
        checkpoint_prefix: str | None = None,
        marginals: Marginals = "shuffle",
        allow_random: bool = False,
        checkpoint_layout: Layout | None = None,
    ) -> None:
        super().__init__(
            critic, checkpoint, checkpoint_prefix, marginals, allow_random, checkpoint_layout
        )

    def estimate(self, a: Tensor, b: Tensor) -> Tensor:
        joint, marginal = self.joint_and_marginal(a, b)
        return joint.mean() - torch.exp(marginal - 1.0).mean()


class InfoNCE(CriticEstimator):
    """InfoNCE: mean_i [T(a_i, b_i) − log mean_j e^T(a_i, b_j)] over all B² pairs; ≤ log B."""

    def estimate(self, a: Tensor, b: Tensor) -> Tensor:
        matrix = self.critic.pair_scores(a, b)
        n = matrix.shape[0]
        return (matrix.diagonal() - torch.logsumexp(matrix, dim=1)).mean() + math.log(n)


class SMILE(CriticEstimator):
    """SMILE (Song & Ermon 2020): DV bound with the critic clipped to [−τ, τ] in the partition
    term, E_P[T] − log E_Q[e^clip(T, −τ, τ)] (`clip` = τ; None: no clipping, plain DV).

    As in the authors' reference implementation the critic is trained with the Jensen–Shannon
    bound −E_P[softplus(−T)] − E_Q[softplus(T)] (whose optimum T is the log density ratio), while
    the value is the clipped DV: `training_loss` = −[JS + stopgrad(DV_clip − JS)]
    (`js_gradient=False` trains on the clipped DV directly).
    """

    def __init__(
        self,
        critic: nn.Module,
        checkpoint: str | None = None,
        checkpoint_prefix: str | None = None,
        marginals: Marginals = "pairs",
        clip: float | None = 5.0,
        js_gradient: bool = True,
        allow_random: bool = False,
        checkpoint_layout: Layout | None = None,
    ) -> None:
        super().__init__(
            critic, checkpoint, checkpoint_prefix, marginals, allow_random, checkpoint_layout
        )
        self.clip = clip
        self.js_gradient = js_gradient

    def _dv(self, joint: Tensor, marginal: Tensor) -> Tensor:
        if self.clip is not None:
            marginal = marginal.clamp(-self.clip, self.clip)
        return joint.mean() - logmeanexp(marginal)

    def estimate(self, a: Tensor, b: Tensor) -> Tensor:
        return self._dv(*self.joint_and_marginal(a, b))

    def training_loss(self, a: Tensor, b: Tensor) -> Tensor:
        joint, marginal = self.joint_and_marginal(a, b)
        dv = self._dv(joint, marginal)
        if not self.js_gradient:
            return -dv
        js = -F.softplus(-joint).mean() - F.softplus(marginal).mean()
        return -(js + (dv - js).detach())


# --------------------------------------------------------------------------- upper bound


class CLUB(CriticEstimator):
    """CLUB upper bound (Cheng et al. 2020) with a variational Gaussian q(b | a).

    `critic` is the q network (`miga.mi.critics.GaussianConditional` for vectors,
    `ConvGaussianConditional` for images): its score is log q(b | a) and `pair_scores` gives
    log q(b_j | a_i). The estimate is mean_i [log q(b_i|a_i) − mean_j log q(b_j|a_i)] (all j,
    as in the reference implementation); `training_loss` is the negative log-likelihood
    −mean_i log q(b_i|a_i) (q is fitted, the estimate is then read off). With the exact
    conditional the bound exceeds I(a; b) by E_a KL(p(b) ‖ p(b|a)): for correlated Gaussians it
    is d·ρ²/(1−ρ²) against the true −d/2·log(1−ρ²), so it is loose at high MI.
    `attack_loss` is −log q(x_ref | D(x_n+δ)).
    """

    bound = "upper"

    def __init__(
        self,
        critic: nn.Module,
        checkpoint: str | None = None,
        checkpoint_prefix: str | None = None,
        allow_random: bool = False,
        checkpoint_layout: Layout | None = None,
    ) -> None:
        if not hasattr(critic, "log_prob"):
            raise TypeError(
                f"CLUB needs a conditional density network q(b|a) with `log_prob` (e.g. "
                f"miga.mi.critics.GaussianConditional), got {type(critic).__name__}"
            )
        super().__init__(
            critic, checkpoint, checkpoint_prefix, "pairs", allow_random, checkpoint_layout
        )

    def estimate(self, a: Tensor, b: Tensor) -> Tensor:
        matrix = self.critic.pair_scores(a, b)
        return (matrix.diagonal() - matrix.mean(dim=1)).mean()

    def training_loss(self, a: Tensor, b: Tensor) -> Tensor:
        return -self.critic.log_prob(a, b).mean()
