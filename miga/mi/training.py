"""Training a neural MI estimator's critic on (image, reference) pairs (`miga.train_critic`).

`CriticTraining` is a small LightningModule: `training_step` minimises
`estimator.training_loss(a, b)` with

- b = the reference image x_ref, exactly as the attack passes it (`T(D(x_n+δ), x_ref)`);
- a = a *view* of the original image x that resembles what the attack feeds the critic,
  D(x_n+δ): a denoised image, i.e. x plus a small residual error. We use x + σ_aug·ε (ε standard
  normal, clamped to [0,1]), not D(x_n): the residual of a good denoiser at σ = 25 is a few
  grey levels (the demo DnCNN reaches ~25–30 dB, residual std ≈ 0.03–0.05), Gaussian
  augmentation of that size makes the critic robust to it without tying the critic to one
  denoiser (the authors pre-train one critic on the pairs and attack several denoisers with
  it), and it costs nothing, where running a denoiser per training step would dominate the cost
  on a CPU. `augment_sigma=0` trains on x itself.

The DV value of each batch is logged as `mi/estimate` (nats, the training curve) and, when a
validation pair set is given, `mi/validation` (true pairs) and `mi/validation_shuffled` (the
references deranged, so no pair belongs together: an estimate near or below zero) after every
validation.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor

from miga.mi.base import MIEstimator
from miga.mi.estimators import derangement


def image_view(x: Tensor, sigma: float, generator: torch.Generator | None = None) -> Tensor:
    """x + σ·ε clamped to [0,1]: the stand-in for a denoised image (module docstring)."""
    if sigma <= 0:
        return x
    if generator is None:
        noise = torch.randn_like(x)
    else:  # a CPU generator: draw on the CPU, then move
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return (x + sigma * noise).clamp(0, 1)


@torch.no_grad()
def validation_estimates(
    estimator: MIEstimator,
    image: Tensor,
    reference: Tensor,
    augment_sigma: float = 0.0,
    repeats: int = 8,
    seed: int = 0,
) -> tuple[float, float]:
    """Mean `estimate` over `repeats` draws on true pairs, and on deranged (shuffled) pairs.

    The estimator should be in eval() mode (BatchNorm, Dropout). Each repeat draws its own
    augmentation noise, marginal shuffle and, for the shuffled value, its own derangement.
    """
    generator = torch.Generator(device="cpu").manual_seed(seed)
    true_values, shuffled_values = [], []
    for _ in range(repeats):
        a = image_view(image, augment_sigma, generator)
        true_values.append(float(estimator.estimate(a, reference)))
        wrong = reference[derangement(reference.shape[0], device=reference.device)]
        shuffled_values.append(float(estimator.estimate(a, wrong)))
    return sum(true_values) / repeats, sum(shuffled_values) / repeats


class CriticTraining(L.LightningModule):
    """Fit `estimator`'s critic: loss = `estimator.training_loss(view(x), x_ref)`.

    Batches are dicts with "image" and "reference" (the paired datasets' items). A frozen
    estimator (one that loaded a checkpoint) is unfrozen first: training from a checkpoint
    fine-tunes it.
    """

    def __init__(
        self,
        estimator: MIEstimator,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        augment_sigma: float = 0.04,
        eval_repeats: int = 8,
    ) -> None:
        super().__init__()
        if getattr(estimator, "frozen", False):
            estimator.critic.requires_grad_(True)
            estimator.frozen = False
        self.estimator = estimator
        self.lr = lr
        self.weight_decay = weight_decay
        self.augment_sigma = augment_sigma
        self.eval_repeats = eval_repeats

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        a = image_view(batch["image"], self.augment_sigma)
        loss = self.estimator.training_loss(a, batch["reference"])
        with torch.no_grad():
            estimate = self.estimator.estimate(a, batch["reference"])
        self.log("mi/estimate", estimate, prog_bar=True, batch_size=a.shape[0])
        self.log("mi/loss", loss.detach(), batch_size=a.shape[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        true, shuffled = validation_estimates(
            self.estimator,
            batch["image"],
            batch["reference"],
            self.augment_sigma,
            self.eval_repeats,
            seed=batch_idx,
        )
        size = batch["image"].shape[0]
        self.log("mi/validation", true, prog_bar=True, batch_size=size)
        self.log("mi/validation_shuffled", shuffled, batch_size=size)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.estimator.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

    def critic_state_dict(self) -> dict[str, Tensor]:
        """The critic's plain state dict (what `mi_estimator.checkpoint=` loads strictly)."""
        state = self.estimator.critic.state_dict()
        return {k: v.detach().cpu().contiguous() for k, v in state.items()}
