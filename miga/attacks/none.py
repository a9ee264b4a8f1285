"""No attack: δ = 0, the reference row of every comparison (what the denoiser does unattacked).

No paper, no step rule (0 steps). Defaults: conf/attack/none.yaml (`attack=none`).
"""

from __future__ import annotations

from miga.attacks.base import Attack


class NoAttack(Attack):
    """δ = 0. `steps` is accepted (and ignored) like `RandomNoise`'s, for sweeps over attacks."""

    def __init__(self, steps: int = 0) -> None:
        super().__init__({}, {}, steps=0, optimizer=None)
