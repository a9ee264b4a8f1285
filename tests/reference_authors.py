"""The MIGA authors' released attack step, written out from a reading of their two scripts.

Dilemma-CMZ/Mutual-Information-Guided-Denoising-Attack: `Known-Task/Attack_restormer/Attack.py`
(`optimized_attack`) and `Unknown-Task/Attack.py` (`make_pixel_adversary`, `MINE`). This is not
their code: it is plain torch, one line per thing their step does, in their order, kept apart
from miga's loop so that tests/test_authors_protocol.py can hold `attack=miga_authors` and
`attack=miga_unknown_authors` to it. What their scripts do, step by step:

1. x_p = clamp(x_n + δ, 0, 1); out = D(x_p), not clamped;
2. per image: MSE(out, target) + 0.1·P(out, target) + 3·[MSE(x_p, x_n) + 0.1·P(x_p, x_n)]
   + 1e-4·‖δ‖₂ + the MI term (known: −10·mean_c (softmax − one-hot)²; unknown: −0.01·T(out, x_ref)),
   P a feature MSE through VGG16 on raw [0,1] input (known: the whole `features` stack; unknown:
   the sum over the outputs of layers 4, 9 and 16);
3. the batch mean of that, backward, (unknown: clip_grad_norm_ of δ to 1 over the batch),
   Adam step (known lr 0.1, unknown 0.04), StepLR(30, 0.5) step;
4. known: δ clamped to [−ε, ε], then δ = clamp(x_n + δ, 0, 1) − x_n; unknown: nothing.

The image they keep is clamp(x_n + δ, 0, 1): the δ returned here is that image minus x_n.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def image_mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean of (a − b)² over each image's values, (B,)."""
    return (a - b).pow(2).flatten(1).mean(dim=1)


class AuthorsMINE(nn.Module):
    """Their critic `MINE(3, 64)` with their attribute names (conv1..5, bn1..5, fc1..3):
    five [conv3×3, BatchNorm, LeakyReLU 0.2, Dropout 0.25, MaxPool 2] blocks on cat(a, b),
    then 2048 → 512 → 256 → 1 with LeakyReLU 0.2 (and Dropout 0.5) between."""

    def __init__(self, channels: tuple[int, ...] = (64, 128, 256, 512, 512)) -> None:
        super().__init__()
        width = 6
        for k, out in enumerate(channels, start=1):
            setattr(self, f"conv{k}", nn.Conv2d(width, out, 3, padding=1))
            setattr(self, f"bn{k}", nn.BatchNorm2d(out))
            width = out
        self.blocks = len(channels)
        self.fc1 = nn.Linear(width * 2 * 2, 512)
        self.fc2 = nn.Linear(512, 256)
        self.fc3 = nn.Linear(256, 1)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        h = torch.cat([a, b], dim=1)
        for k in range(1, self.blocks + 1):
            h = getattr(self, f"bn{k}")(getattr(self, f"conv{k}")(h))
            h = F.max_pool2d(F.dropout(F.leaky_relu(h, 0.2), 0.25, self.training), 2)
        h = F.dropout(F.leaky_relu(self.fc1(h.flatten(1)), 0.2), 0.5, self.training)
        h = F.dropout(F.leaky_relu(self.fc2(h), 0.2), 0.5, self.training)
        return self.fc3(h)


def mine_view(image: Tensor) -> Tensor:
    """Their critic's input: bilinear 64×64 (align_corners=False), ImageNet-normalised."""
    image = F.interpolate(image, size=(64, 64), mode="bilinear", align_corners=False)
    return (image - IMAGENET_MEAN) / IMAGENET_STD


def _attack(
    loss_of: Callable[[Tensor, Tensor], Tensor],
    noisy: Tensor,
    lr: float,
    steps: int,
    after_step: Callable[[Tensor], None] | None = None,
    clip: float | None = None,
) -> Tensor:
    delta = torch.zeros_like(noisy, requires_grad=True)
    optimizer = torch.optim.Adam([delta], lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.5)
    for _ in range(steps):
        optimizer.zero_grad()
        perturbed = torch.clamp(noisy + delta, 0, 1)
        loss_of(perturbed, delta).mean().backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_([delta], max_norm=clip)
        optimizer.step()
        scheduler.step()
        if after_step is not None:
            after_step(delta)
    with torch.no_grad():
        return torch.clamp(noisy + delta, 0, 1) - noisy


def known_task(
    net: nn.Module,
    classifier: nn.Module,
    vgg: nn.Module,
    clean: Tensor,
    noisy: Tensor,
    label: Tensor,
    steps: int,
    epsilon: float = 4 / 255,
) -> Tensor:
    """δ of `Known-Task/Attack_restormer/Attack.py` after `steps` steps (VGG: one tensor)."""

    def loss_of(perturbed: Tensor, delta: Tensor) -> Tensor:
        out = net(perturbed)
        probs = classifier(out).softmax(dim=1)
        one_hot = torch.zeros_like(probs).scatter_(1, label.view(-1, 1), 1)
        return (
            image_mse(out, clean)
            + 0.1 * image_mse(vgg(out), vgg(clean))
            + 3.0 * (image_mse(perturbed, noisy) + 0.1 * image_mse(vgg(perturbed), vgg(noisy)))
            - 10 * (probs - one_hot).pow(2).mean(dim=1)
            + 1e-4 * delta.flatten(1).norm(dim=1)
        )

    def project(delta: Tensor) -> None:
        delta.data = torch.clamp(delta.data, -epsilon, epsilon)
        delta.data = torch.clamp(noisy + delta.data, 0, 1) - noisy

    return _attack(loss_of, noisy, lr=0.1, steps=steps, after_step=project)


def unknown_task(
    net: nn.Module,
    critic: AuthorsMINE,
    vgg_layers: Callable[[Tensor], list[Tensor]],
    noisy: Tensor,
    reference: Tensor,
    steps: int,
) -> Tensor:
    """δ of `Unknown-Task/Attack.py` after `steps` steps (`vgg_layers`: layers 4, 9, 16)."""

    def perceptual(a: Tensor, b: Tensor) -> Tensor:
        total = torch.zeros(a.shape[0])
        for fa, fb in zip(vgg_layers(a), vgg_layers(b), strict=True):
            total = total + image_mse(fa, fb)
        return total

    def loss_of(perturbed: Tensor, delta: Tensor) -> Tensor:
        out = net(perturbed)
        score = critic(mine_view(out), mine_view(reference)).view(-1)
        return (
            image_mse(out, reference)
            + 0.1 * perceptual(out, reference)
            + 3.0 * (image_mse(perturbed, noisy) + 0.1 * perceptual(perturbed, noisy))
            + 1e-4 * delta.flatten(1).norm(dim=1)
            + 0.01 * -score
        )

    return _attack(loss_of, noisy, lr=0.04, steps=steps, clip=1.0)
