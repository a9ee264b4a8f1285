"""AttackModule: one cell's work per batch, as a Lightning predict step.

noise → denoise (reference output) → attack → denoise the perturbed input → score. Models are
frozen; gradients exist only inside the attack (`torch.enable_grad()`, because Lightning runs
predict under `no_grad` even with `inference_mode=False`, docs/architecture.md §6).

Precision: Lightning's `precision=bf16-mixed` runs the whole `predict_step` under autocast.
Only the attack's own forward/backward may run in reduced precision; D(x_n), D(x_n+δ), the task
model's predictions and every scorer run in float32 with autocast off (`full_precision`), so
rows and summaries mean the same whatever `trainer.precision` says.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import lightning as L
import torch
from torch import nn

from miga.attacks.base import Attack
from miga.attacks.state import AttackInputs, Victim
from miga.metrics.scorers import Outcome, Scorers, scorer_list
from miga.threats.delivery import Delivery, NoDelivery
from miga.threats.sensor import SensorNoise
from miga.utils.images import PANELS, grid_panels


@contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Autocast off (float32 kernels) and no gradients: how every scored tensor is computed."""
    with torch.autocast(device_type=device.type, enabled=False), torch.no_grad():
        yield


class AttackModule(L.LightningModule):
    """Holds the victim models, the attack and the scorers of one experiment cell."""

    def __init__(
        self,
        denoiser: nn.Module,
        attack: Attack,
        noise: nn.Module,
        downstream: nn.Module | None = None,
        defense: nn.Module | None = None,
        scorers: Scorers = (),
        seed: int = 0,
        grid_images: int = 8,
        channels_last: bool = False,
        compile_models: bool | str = False,
        surrogate_denoiser: nn.Module | None = None,
        surrogate_downstream: nn.Module | None = None,
        sensor: SensorNoise | None = None,
        delivery: Delivery | None = None,
    ) -> None:
        """`channels_last` keeps models and images in NHWC memory layout (faster convolutions
        on CPU with oneDNN and on GPU tensor cores; model outputs move by float rounding).
        `compile_models` runs the denoiser and the downstream through `torch.compile` (compiled
        on the first batch): `True` with its default backend (inductor), a string names another
        backend (`cudagraphs`, `aot_eager`; `eager` checks the wiring at no compile cost).
        benchmarks/README.md says what each buys where.

        `surrogate_denoiser` / `surrogate_downstream` (the config's `surrogate` block): the
        transfer threat model. The attack optimises through these (each defaults to the
        victim's own) and sees only their outputs, D_s(x_n) included; every row is scored
        through the victim's models, and its `white_box` column is 0 when any surrogate is set.

        `sensor` (the config's `sensor` group): noise the attacker does not control. The attack
        gets it (EOT over its `attack_draws`), and every δ is also scored on its `eval_draws`
        fresh draws by its scorers (`sensor<m>_<column>`; `sensor_columns`).

        `delivery` (the config's `delivery` group, `miga.threats.delivery`): what the victim
        really receives. Under `png`/`jpeg` x_n is the 8-bit file's, the attack rounds
        straight-through, and every row scores the delivered image, with δ the delivered one.
        """
        super().__init__()
        self.denoiser = denoiser
        self.downstream = downstream
        self.surrogate_denoiser = surrogate_denoiser
        self.surrogate_downstream = surrogate_downstream
        self.defense = defense
        self.attack = attack
        self.noise = noise
        self.scorers = scorer_list(scorers)
        self.sensor = sensor
        self.delivery = delivery if delivery is not None else NoDelivery()
        self.delivery.check_budget(getattr(attack, "budget", None))
        self.seed = seed
        self.grid_images = grid_images
        self.images_sent = 0
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        for model in (denoiser, downstream, defense, surrogate_denoiser, surrogate_downstream):
            if model is not None:
                model.requires_grad_(False).eval().to(memory_format=self.memory_format)
        self._compiled: Victim | None = None
        if compile_models:
            backend = {} if compile_models is True else {"backend": str(compile_models)}
            self._compiled = Victim(
                torch.compile(denoiser, **backend),
                None if downstream is None else torch.compile(downstream, **backend),
                defense,
                self.delivery,
            )

    @property
    def victim(self) -> Victim:
        """The models the attack and the evaluation go through (compiled ones if asked for:
        `torch.compile` wraps the same modules, so device moves reach them)."""
        return self._compiled or Victim(self.denoiser, self.downstream, self.defense, self.delivery)

    @property
    def white_box(self) -> bool:
        """Whether the attack goes through the very models that score it."""
        return self.surrogate_denoiser is None and self.surrogate_downstream is None

    @property
    def attacker(self) -> Victim:
        """The models the attack optimises through: the surrogates where set, else the
        victim's (eager: `speed.compile` compiles the scored models only)."""
        if self.white_box:
            return self.victim
        return Victim(
            self.surrogate_denoiser or self.denoiser,
            self.surrogate_downstream or self.downstream,
            self.defense,
            self.delivery,
        )

    def attack_inputs(self, batch: dict[str, Any]) -> AttackInputs:
        """What the attack of one batch starts from: the batch in the module's memory layout,
        its noisy version x_n (as the delivery's file holds it) and D(x_n) of the delivered
        x_n, computed once and without gradients."""
        clean, index = batch["image"].contiguous(memory_format=self.memory_format), batch["index"]
        clean = clean.float()
        with full_precision(clean.device):
            # `stored`: the dataset's pre-noised image (dataset.noisy_root) for noise=from_disk
            noisy = self.noise(clean, index, self.seed, stored=batch.get("noisy"))
            noisy = self.delivery.source(noisy)  # png/jpeg: the 8-bit file's x_n
            denoised = self.victim.evaluate(noisy, index, self.seed).float()
        return AttackInputs(
            clean=clean,
            noisy=noisy,
            denoised=denoised,
            index=index,
            label=batch.get("label"),
            reference=batch.get("reference"),
            seed=self.seed,
        )

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        inputs = self.attack_inputs(batch)
        victim, attacker = self.victim, self.attacker
        seen = inputs  # what the attacker knows: D_s(x_n) from its own denoiser
        if self.surrogate_denoiser is not None:
            with full_precision(inputs.noisy.device):
                own = attacker.evaluate(inputs.noisy, inputs.index, self.seed).float()
            seen = replace(inputs, denoised=own)
        with torch.enable_grad():
            result = self.attack(seen, attacker, self.sensor)
        # What is sent: x_n+δ (none) or its 8-bit file (png/jpeg); δ is the delivered one.
        perturbed, delta = self.delivery.deliver(
            inputs.noisy, result.delta.float(), getattr(self.attack, "budget", None)
        )
        with full_precision(perturbed.device):
            attacked = victim.evaluate(perturbed, inputs.index, self.seed).float()
            outcome = Outcome(
                clean=inputs.clean,
                noisy=inputs.noisy,
                denoised=inputs.denoised,
                perturbed=perturbed,
                attacked=attacked,
                delta=delta,
                result=result,
                label=inputs.label,
                reference=inputs.reference,
                downstream=self.downstream,
                sizes=batch.get("size"),
            )
            columns = {"white_box": torch.full((len(delta),), float(self.white_box))}
            for scorer in self.scorers:
                columns.update(scorer(outcome))
            if self.sensor is not None:
                columns.update(self.sensor_columns(outcome, inputs.index))
        return {"id": inputs.index, "columns": columns, "images": self._images_to_send(outcome)}

    def sensor_columns(self, outcome: Outcome, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The sensor's scorers on each of its fresh draws m: x + n_m and x + n_m + δ through
        the victim (call in `full_precision`). Draws come from streams the attack never read."""
        sensor, columns = self.sensor, {}
        for draw in range(sensor.eval_draws):
            noisy = sensor.eval_noisy(outcome.clean, index, self.seed, draw)
            perturbed = sensor.observe(noisy, outcome.delta)
            fresh = replace(
                outcome,
                noisy=noisy,
                denoised=self.victim.evaluate(noisy, index, self.seed).float(),
                perturbed=perturbed,
                attacked=self.victim.evaluate(perturbed, index, self.seed).float(),
            )
            for scorer in scorer_list(sensor.scorers):
                columns.update({f"sensor{draw}_{k}": v for k, v in scorer(fresh).items()})
        return columns

    def _images_to_send(self, outcome: Outcome) -> dict[str, torch.Tensor]:
        """Only the first `grid_images` samples of the cell carry images to the callbacks."""
        count = max(0, min(self.grid_images - self.images_sent, len(outcome.clean)))
        self.images_sent += count
        images = {name: getattr(outcome, name) for name in PANELS}
        return grid_panels(images, count, outcome.sizes)
