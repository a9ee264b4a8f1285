"""Noise the attacker does not control: the sensor's own draw (docs/threat_models.md).

In the paper's setting δ is added to one given x_n, and the cell scores that very draw. Here the
draw is the sensor's: the image the denoiser sees is x + n + δ for an n the attacker never
learns. The attack may optimise the expectation over K draws per step (EOT, `attack_draws`;
0 = it sees only the cell's own x_n, today's white-box δ), and every δ is scored on M fresh
draws (`eval_draws`) from streams the attack never reads, so the score measures what survives
an unknown draw rather than what was fitted to a known one.

The model only draws; scoring on its draws happens above it (`AttackModule.sensor_columns`
runs `scorers` through the victim), so the threat model imports no scorer.

Streams (miga.utils.seeding): the cell's x_n is "noise"; the attack's k-th draw at step s is
"sensor/attack/<s>/<k>"; evaluation draw m is "sensor/eval/<m>". Each is a per-sample stream of
(seed, stream, dataset index): independent of each other, of batch size and of K.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from miga.threats.noise import GaussianNoise


class SensorNoise(nn.Module):
    """The sensor threat model: fresh draws of the cell's noise model, for attack and scoring.

    Args:
        noise: the cell's noise model (`${noise}`); each draw is one of its per-sample draws.
        attack_draws: K, noise draws per attack step the loss is averaged over (EOT); 0: the
            attack optimises on the cell's x_n alone (the white-box δ, scored under fresh noise).
        eval_draws: M, fresh draws each δ is scored on.
        scorers: what is scored on every evaluation draw (columns `sensor<m>_<column>`), kept
            as given (name-keyed, as the config has them) for the module to run.
    """

    def __init__(
        self,
        noise: GaussianNoise,
        attack_draws: int = 4,
        eval_draws: int = 8,
        scorers: Mapping[str, Callable | None] | Sequence[Callable] = (),
    ) -> None:
        super().__init__()
        for key, value in (("attack_draws", attack_draws), ("eval_draws", eval_draws)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"sensor.{key} must be an integer >= 0, got {value!r}")
        if eval_draws == 0:
            raise ValueError("sensor.eval_draws must be >= 1: the sensor model is scored on them")
        self.noise = noise
        self.attack_draws = attack_draws
        self.eval_draws = eval_draws
        self.scorers = scorers

    @staticmethod
    def observe(noisy: Tensor, delta: Tensor) -> Tensor:
        """What the denoiser receives from a noisy draw and δ: an image, kept in [0,1]."""
        return (noisy + delta).clamp(0.0, 1.0)

    def attack_noisy(self, clean: Tensor, index: Tensor, seed: int, step: int) -> Tensor:
        """The K draws of attack step `step`, draw-major: (K·B, C, H, W), rows k·B … k·B+B−1."""
        return torch.cat(
            [
                self.noise(clean, index, seed, f"sensor/attack/{step}/{k}")
                for k in range(self.attack_draws)
            ]
        )

    def eval_noisy(self, clean: Tensor, index: Tensor, seed: int, draw: int) -> Tensor:
        """Evaluation draw `draw` (0 … M−1): x + n_m, never seen by the attack."""
        return self.noise(clean, index, seed, f"sensor/eval/{draw}")
