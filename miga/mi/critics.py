"""Critic networks T(a, b) for the neural MI estimators of `miga.mi.estimators`.

Every critic maps a batch of pairs to one score per pair, `critic(a, b) -> (B,)`, and offers the
score matrix of all pairs, `critic.pair_scores(a, b) -> (B, B)` with entry [i, j] = T(a_i, b_j):
the diagonal holds the joint samples, the off-diagonal entries samples of the product of the
marginals. Concatenation critics compute it by tiling the batch (B² forward passes, optionally in
chunks); separable critics T(a, b) = g(a)·h(b) by one matrix product.

- `MLPCritic`: concatenation MLP for vectors (any trailing shape is flattened).
- `SeparableCritic`: g(a)·h(b) with two MLPs.
- `ConvPairCritic`: the MIGA authors' image critic (docs/architecture.md §2).
- `FeatureSeparableCritic`: separable critic on the frozen features of an image backbone.
- `GaussianConditional`, `ConvGaussianConditional`: variational q(b | a) networks for CLUB; their
  score is the log-density log q(b | a).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def mlp(dim_in: int, dim_out: int, hidden: int, layers: int) -> nn.Sequential:
    """`layers` hidden layers of width `hidden` with ReLU, then a linear output layer."""
    modules: list[nn.Module] = []
    width = dim_in
    for _ in range(layers):
        modules += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    modules.append(nn.Linear(width, dim_out))
    return nn.Sequential(*modules)


class Critic(nn.Module, ABC):
    """Base class: `forward(a, b) -> (B,)` scores and `pair_scores(a, b) -> (B, B)`.

    `pair_chunk` bounds how many pairs one forward pass of the tiled all-pairs evaluation holds
    (None: all B² at once). A critic with BatchNorm in train mode sees different batch
    statistics per chunk, so leave it None when training such a critic on all pairs.
    """

    def __init__(self, pair_chunk: int | None = None) -> None:
        super().__init__()
        self.pair_chunk = pair_chunk

    @abstractmethod
    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """(B,) scores T(a_i, b_i) of the given pairs."""

    def pair_scores(self, a: Tensor, b: Tensor) -> Tensor:
        """(B, B) matrix of T(a_i, b_j), by tiling: row i pairs a_i with every b_j."""
        n = a.shape[0]
        if b.shape[0] != n:
            raise ValueError(f"pair_scores needs equal batch sizes, got {n} and {b.shape[0]}")
        rows_per_chunk = n if self.pair_chunk is None else max(1, self.pair_chunk // n)
        out = []
        for start in range(0, n, rows_per_chunk):
            rows = a[start : start + rows_per_chunk]
            tiled_a = rows.repeat_interleave(n, dim=0)
            tiled_b = b.repeat(rows.shape[0], *([1] * (b.dim() - 1)))
            out.append(self(tiled_a, tiled_b).view(rows.shape[0], n))
        return torch.cat(out, dim=0)


class MLPCritic(Critic):
    """Concatenation critic T(a, b) = MLP([a, b]) for vectors (inputs flattened from dim 1)."""

    def __init__(
        self,
        dim_a: int,
        dim_b: int,
        hidden: int = 256,
        layers: int = 2,
        pair_chunk: int | None = None,
    ) -> None:
        super().__init__(pair_chunk)
        self.net = mlp(dim_a + dim_b, 1, hidden, layers)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.net(torch.cat([a.flatten(1), b.flatten(1)], dim=1)).squeeze(1)


class SeparableCritic(Critic):
    """Separable critic T(a, b) = g(a)·h(b): all B² pair scores cost one matrix product."""

    def __init__(
        self,
        dim_a: int,
        dim_b: int,
        embed_dim: int = 32,
        hidden: int = 256,
        layers: int = 2,
    ) -> None:
        super().__init__()
        self.g = mlp(dim_a, embed_dim, hidden, layers)
        self.h = mlp(dim_b, embed_dim, hidden, layers)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return (self.g(a.flatten(1)) * self.h(b.flatten(1))).sum(dim=1)

    def pair_scores(self, a: Tensor, b: Tensor) -> Tensor:
        return self.g(a.flatten(1)) @ self.h(b.flatten(1)).T


class _ImageNormalize(nn.Module):
    """Resize to `size`×`size` (bilinear, only when needed) and ImageNet-normalise [0,1] RGB.

    The mean/std buffers are not persistent: they are not part of any state dict.
    """

    def __init__(self, size: int | None, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std


class ConvPairCritic(Critic):
    """The MIGA authors' image critic T(a, b) (docs/architecture.md §2).

    a and b (N×3×H×W in [0,1], sizes may differ) are each resized to `size`×`size` (bilinear)
    and ImageNet-normalised, concatenated along channels (a first: 6 channels), passed through
    5 × [conv3×3 (padding 1), BatchNorm, LeakyReLU 0.2, Dropout 0.25, MaxPool 2] with
    64, 128, 256, 512, 512 channels, flattened (512·2·2 = 2048 at size 64) and scored by
    FC 2048→512→256→1 with LeakyReLU 0.2 between.

    State-dict layout: two flat `nn.Sequential`s, so with the default 5 blocks:

    - `features.{5k}.weight|bias`: conv of block k (k = 0..4, i.e. features.0, .5, .10, .15, .20)
    - `features.{5k+1}.weight|bias|running_mean|running_var|num_batches_tracked`: its BatchNorm
      (features.{5k+2} LeakyReLU, .{5k+3} Dropout, .{5k+4} MaxPool hold no parameters)
    - `classifier.0.weight|bias` (2048→512), `classifier.2.*` (512→256), `classifier.4.*` (256→1)

    The authors' released `mine_model.pth` (their `MINE(3, 64)`) holds the same 41 tensors as
    `conv1..5`, `bn1..5`, `fc1..3`: `from_authors_layout` renames them (conv{k} → features.{5(k−1)},
    bn{k} → features.{5(k−1)+1}, fc{j} → classifier.{2(j−1)}); the critic loader does it itself
    when it recognises those names (`mi_estimator.checkpoint_layout`). Their forward is this one:
    64×64 bilinear resize (align_corners=False), ImageNet normalisation, cat(a, b), the five
    blocks, the three linear layers.

    The ImageNet mean/std are non-persistent buffers (not in the state dict).
    """

    #: A state dict in the authors' layout has these keys (`looks_like_authors_layout`).
    AUTHORS_MARKERS = ("conv1.weight", "bn1.running_mean", "fc1.weight")

    @classmethod
    def looks_like_authors_layout(cls, state: dict[str, Tensor]) -> bool:
        return all(key in state for key in cls.AUTHORS_MARKERS)

    @staticmethod
    def from_authors_layout(state: dict[str, Tensor]) -> dict[str, Tensor]:
        """The authors' key names (conv1..5, bn1..5, fc1..3) renamed to ours; any other key
        is kept as it is, so the strict load names it."""
        renamed = {}
        for key, value in state.items():
            module, _, rest = key.partition(".")
            for stem, target, stride, offset in (
                ("conv", "features", 5, 0),
                ("bn", "features", 5, 1),
                ("fc", "classifier", 2, 0),
            ):
                number = module.removeprefix(stem)
                if module.startswith(stem) and number.isdigit() and int(number) >= 1:
                    key = f"{target}.{stride * (int(number) - 1) + offset}.{rest}"
                    break
            renamed[key] = value
        return renamed

    def __init__(
        self,
        in_channels: int = 3,
        size: int = 64,
        channels: Sequence[int] = (64, 128, 256, 512, 512),
        fc: Sequence[int] = (512, 256),
        dropout: float = 0.25,
        negative_slope: float = 0.2,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        pair_chunk: int | None = None,
    ) -> None:
        super().__init__(pair_chunk)
        if size % (2 ** len(channels)):
            raise ValueError(f"size {size} is not divisible by 2**{len(channels)}")
        self.prepare = _ImageNormalize(size, mean, std)
        layers: list[nn.Module] = []
        width = 2 * in_channels
        for out in channels:
            layers += [
                nn.Conv2d(width, out, kernel_size=3, padding=1),
                nn.BatchNorm2d(out),
                nn.LeakyReLU(negative_slope),
                nn.Dropout(dropout),
                nn.MaxPool2d(2),
            ]
            width = out
        self.features = nn.Sequential(*layers)
        flat = width * (size // 2 ** len(channels)) ** 2
        head: list[nn.Module] = []
        for out in fc:
            head += [nn.Linear(flat, out), nn.LeakyReLU(negative_slope)]
            flat = out
        head.append(nn.Linear(flat, 1))
        self.classifier = nn.Sequential(*head)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        x = torch.cat([self.prepare(a), self.prepare(b)], dim=1)
        return self.classifier(self.features(x).flatten(1)).squeeze(1)


class FeatureSeparableCritic(Critic):
    """Separable critic g(φ(a))·h(φ(b)) on the frozen features φ of an image backbone.

    `backbone` maps normalised N×3×S×S images to features (any shape; flattened), e.g.
    `timm.create_model("resnet18", num_classes=0)` with local weights. It is frozen
    (`requires_grad_(False)`) and kept in eval() whatever mode the critic is put in; gradients
    still flow through it to the images (an attack needs them). Only the projection heads g and
    h train. `feature_dim` defaults to `backbone.num_features` (timm) or is probed with one
    forward pass at `input_size` (64 when None). Images are resized to `input_size` when given.
    The state dict holds the backbone's weights too (`backbone.*`, then `g.*`, `h.*`), so a
    saved critic reloads strictly into the same backbone architecture.
    """

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int | None = None,
        embed_dim: int = 128,
        hidden: int = 512,
        layers: int = 1,
        input_size: int | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.prepare = _ImageNormalize(input_size, mean, std)
        self.backbone = backbone.requires_grad_(False).eval()
        if feature_dim is None:
            feature_dim = getattr(backbone, "num_features", None)
        if feature_dim is None:
            probe = input_size or 64
            with torch.no_grad():
                feature_dim = backbone(torch.zeros(1, 3, probe, probe)).flatten(1).shape[1]
        self.g = mlp(int(feature_dim), embed_dim, hidden, layers)
        self.h = mlp(int(feature_dim), embed_dim, hidden, layers)

    def train(self, mode: bool = True) -> FeatureSeparableCritic:
        super().train(mode)
        self.backbone.eval()
        return self

    def features(self, x: Tensor) -> Tensor:
        return self.backbone(self.prepare(x)).flatten(1)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return (self.g(self.features(a)) * self.h(self.features(b))).sum(dim=1)

    def pair_scores(self, a: Tensor, b: Tensor) -> Tensor:
        return self.g(self.features(a)) @ self.h(self.features(b)).T


def _gaussian_log_prob(b: Tensor, mu: Tensor, logvar: Tensor, event_dims: int) -> Tensor:
    """log N(b; mu, diag exp(logvar)) summed over the last `event_dims` dims (broadcasting)."""
    elem = -0.5 * ((b - mu) ** 2 * torch.exp(-logvar) + logvar + math.log(2 * math.pi))
    return elem.flatten(-event_dims).sum(dim=-1)


class _ConditionalBase(Critic):
    """q(b | a) = N(b; μ(a), diag σ²(a)); score T(a, b) = log q(b | a) (nats).

    Subclasses implement `params(a) -> (mu, logvar)` with the shape of `target(b)`. log σ² is
    soft-clamped to [-`max_logvar`, `max_logvar`] for numerical safety (unlike the CLUB
    reference code's tanh, which caps the variance at e^±1 and so cannot fit strongly
    dependent pairs).
    """

    def __init__(self, max_logvar: float = 10.0) -> None:
        super().__init__()
        self.max_logvar = max_logvar

    @abstractmethod
    def params(self, a: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(b | a)."""

    def target(self, b: Tensor) -> Tensor:
        return b

    def _clamp(self, logvar: Tensor) -> Tensor:
        return self.max_logvar * torch.tanh(logvar / self.max_logvar)

    def log_prob(self, a: Tensor, b: Tensor) -> Tensor:
        mu, logvar = self.params(a)
        return _gaussian_log_prob(self.target(b), mu, logvar, mu.dim() - 1)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.log_prob(a, b)

    def pair_scores(self, a: Tensor, b: Tensor) -> Tensor:
        """[i, j] = log q(b_j | a_i), from one network pass per a_i (no tiling)."""
        mu, logvar = self.params(a)
        target = self.target(b)
        return _gaussian_log_prob(
            target.unsqueeze(0), mu.unsqueeze(1), logvar.unsqueeze(1), mu.dim() - 1
        )


class GaussianConditional(_ConditionalBase):
    """Vector q(b | a): MLPs for μ(a) and log σ²(a) (inputs flattened), as in CLUB."""

    def __init__(
        self, dim_a: int, dim_b: int, hidden: int = 256, layers: int = 2, max_logvar: float = 10.0
    ) -> None:
        super().__init__(max_logvar)
        self.mu = mlp(dim_a, dim_b, hidden, layers)
        self.logvar = mlp(dim_a, dim_b, hidden, layers)

    def params(self, a: Tensor) -> tuple[Tensor, Tensor]:
        a = a.flatten(1)
        return self.mu(a), self._clamp(self.logvar(a))

    def target(self, b: Tensor) -> Tensor:
        return b.flatten(1)


class ConvGaussianConditional(_ConditionalBase):
    """Image q(b | a): a fully convolutional net predicts a per-pixel Gaussian of b.

    a and b are resized to `size`×`size` (bilinear); `depth` conv3×3 layers of `width`
    channels with ReLU map a to 2·C channels (μ, log σ²) of b's resized pixels.
    """

    def __init__(
        self,
        in_channels: int = 3,
        size: int = 32,
        width: int = 64,
        depth: int = 4,
        max_logvar: float = 10.0,
    ) -> None:
        super().__init__(max_logvar)
        self.resize = _ImageNormalize(size, (0.0,) * in_channels, (1.0,) * in_channels)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1)]
        for _ in range(depth - 2):
            layers += [nn.ReLU(), nn.Conv2d(width, width, 3, padding=1)]
        layers += [nn.ReLU(), nn.Conv2d(width, 2 * in_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def params(self, a: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.net(self.resize(a)).chunk(2, dim=1)
        return mu, self._clamp(logvar)

    def target(self, b: Tensor) -> Tensor:
        return self.resize(b)
