"""`attack=miga_authors` and `attack=miga_unknown_authors` against the authors' released step.

tests/reference_authors.py writes their two scripts' step out in plain torch; here the presets,
instantiated from the real conf, run through miga's one loop on tiny models (a residual conv
denoiser whose raw output leaves [0,1], a linear classifier, a random VGG16 saved in
torchvision's layout, the authors' MINE critic saved under their key names) and must give the
reference's δ after 1 and 3 steps: float32, atol 1e-6 (in [0,1] image units; ε is 4/255).
The loaders (VGG16 weights, the authors' critic layout) are tested on their own below.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from miga.attacks.state import AttackInputs, Victim
from miga.checkpoints import CheckpointError
from miga.denoisers import Denoiser
from miga.downstream.features import VGG16Features
from miga.mi.critics import ConvPairCritic
from miga.mi.estimators import MINE, CriticCheckpointError
from tests import reference_authors as ref
from tests.conftest import compose_config

pytestmark = pytest.mark.filterwarnings("ignore:.*RANDOM weights:UserWarning")

ATOL = 1e-6


class _Residual(nn.Module):
    """x + g(x): a tiny denoiser whose raw output overshoots [0,1] near the box's edges."""

    def __init__(self) -> None:
        super().__init__()
        self.g = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, 3, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.5 * self.g(x)


class _Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.AvgPool2d(4), nn.Flatten(), nn.Linear(3 * 8 * 8, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory) -> Path:
    """A random-weight VGG16 saved as torchvision names it (features.* and classifier.*; the
    classifier cut to a stub of the real names to keep the file small: it is not used)."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["D"])
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)
    path = tmp_path_factory.mktemp("vgg") / "vgg16-397923af.pth"
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def critic_file(tmp_path_factory) -> Path:
    """The authors' MINE(3, 64) with random weights and batch statistics, saved as they name it."""
    torch.manual_seed(1)
    critic = ref.AuthorsMINE()
    with torch.no_grad():
        for name, buffer in critic.named_buffers():
            if "running" in name:
                buffer.copy_(torch.rand_like(buffer) + (0.5 if "var" in name else -0.5))
    path = tmp_path_factory.mktemp("critic") / "mine_model.pth"
    torch.save(critic.state_dict(), path)
    return path


def _setting(seed: int) -> tuple[Denoiser, nn.Module, AttackInputs]:
    torch.manual_seed(seed)
    denoiser = Denoiser(_Residual(), checkpoint=None)
    classifier = _Classifier().requires_grad_(False).eval()
    gen = torch.Generator().manual_seed(seed)
    clean = torch.rand(2, 3, 32, 32, generator=gen)
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=gen)).clamp(0, 1)
    reference = torch.rand(2, 3, 32, 32, generator=gen)
    with torch.no_grad():
        denoised = denoiser(noisy)
        label = classifier(denoised).argmax(1)
        raw = denoiser(noisy, clamp=False)
    assert (raw < 0).any() and (raw > 1).any()  # the output clamp matters here
    inputs = AttackInputs(clean, noisy, denoised, torch.arange(2), label, reference)
    return denoiser, classifier, inputs


@pytest.mark.parametrize("steps", [1, 3])
def test_known_task_preset_gives_the_authors_delta(steps: int, vgg_file: Path) -> None:
    denoiser, classifier, inputs = _setting(seed=2)
    cfg = compose_config(
        ["attack=miga_authors", f"attack.steps={steps}", f"attack.features.path={vgg_file}"]
    )
    attack = instantiate(cfg.attack)
    with torch.enable_grad():
        ours = attack(inputs, Victim(denoiser, classifier)).delta
    vgg = VGG16Features(vgg_file)
    expected = ref.known_task(
        denoiser.net, classifier, vgg, inputs.clean, inputs.noisy, inputs.label, steps
    )
    assert expected.abs().amax() == pytest.approx(4 / 255, abs=1e-6)  # up to the budget
    torch.testing.assert_close(ours, expected, atol=ATOL, rtol=0)

    # each of the authors' settings matters at this point: the paper-text preset parts from it
    paper = instantiate(compose_config(["attack=miga", f"attack.steps={steps}"]).attack)
    with torch.enable_grad():
        other = paper(inputs, Victim(denoiser, classifier)).delta
    assert (other - expected).abs().amax() > 1e-3


@pytest.mark.parametrize("steps", [1, 3])
def test_unknown_task_preset_gives_the_authors_delta(
    steps: int, vgg_file: Path, critic_file: Path
) -> None:
    denoiser, _, inputs = _setting(seed=3)
    cfg = compose_config(
        [
            "attack=miga_unknown_authors",
            "mi_estimator=mine",
            f"mi_estimator.checkpoint={critic_file}",
            f"attack.steps={steps}",
            f"attack.features.path={vgg_file}",
        ]
    )
    attack = instantiate(cfg.attack)
    with torch.enable_grad():
        ours = attack(inputs, Victim(denoiser)).delta
    critic = ref.AuthorsMINE()
    critic.load_state_dict(torch.load(critic_file, weights_only=True))
    critic.requires_grad_(False).eval()
    vgg = VGG16Features(vgg_file, layers=[4, 9, 16])
    expected = ref.unknown_task(denoiser.net, critic, vgg, inputs.noisy, inputs.reference, steps)
    assert expected.abs().amax() > 0.01
    torch.testing.assert_close(ours, expected, atol=ATOL, rtol=0)


def test_batch_clip_and_mean_loss_are_what_change_the_unknown_step(
    vgg_file: Path, critic_file: Path
) -> None:
    """The preset's per-sample clip with a summed loss (miga_unknown's) is another δ: the
    batch-wide options are what the reference match above rests on."""
    denoiser, _, inputs = _setting(seed=3)
    overrides = [
        "attack=miga_unknown_authors",
        "mi_estimator=mine",
        f"mi_estimator.checkpoint={critic_file}",
        "attack.steps=3",
        "attack.features=null",
    ]
    runs = []
    for extra in ([], ["attack.grad_clip_scope=sample", "attack.loss_reduction=sum"]):
        attack = instantiate(compose_config(overrides + extra).attack)
        with torch.enable_grad():
            runs.append(attack(inputs, Victim(denoiser)).delta)
    assert (runs[0] - runs[1]).abs().amax() > 1e-3


# --- VGG16 weights ---------------------------------------------------------------------------


def test_vgg16_features_are_torchvisions(vgg_file: Path) -> None:
    from torchvision.models import vgg16

    full = vgg16()
    state = torch.load(vgg_file, weights_only=True)
    full.features.load_state_dict({k[9:]: v for k, v in state.items() if k.startswith("features.")})
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(VGG16Features(vgg_file)(x), full.features(x))
        layers = VGG16Features(vgg_file, layers=[4, 9, 16])(x)
        assert [t.shape[1:] for t in layers] == [(64, 16, 16), (128, 8, 8), (256, 4, 4)]
        torch.testing.assert_close(layers[2], full.features[:17](x))


def test_vgg16_default_location_is_torch_hub(vgg_file: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    with pytest.raises(CheckpointError, match="VGG16 weights not found") as err:
        VGG16Features()
    assert str(expected) in str(err.value)
    expected.parent.mkdir(parents=True)
    expected.write_bytes(vgg_file.read_bytes())
    assert isinstance(VGG16Features(layers=[4]), VGG16Features)


def test_vgg16_missing_or_foreign_file_is_a_named_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(CheckpointError, match="attack.features.path") as err:
        VGG16Features(missing)
    assert str(missing) in str(err.value)
    foreign = tmp_path / "foreign.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, foreign)
    with pytest.raises(CheckpointError, match="torchvision's VGG16 layout"):
        VGG16Features(foreign)
    with pytest.raises(ValueError, match="indices 0..30"):
        VGG16Features(missing, layers=[31])


# --- the authors' critic file ----------------------------------------------------------------


def test_authors_critic_file_loads_into_conv_pair_critic(critic_file: Path) -> None:
    estimator = MINE(ConvPairCritic(), checkpoint=str(critic_file))  # recognised by its keys
    authors = ref.AuthorsMINE()
    authors.load_state_dict(torch.load(critic_file, weights_only=True))
    authors.eval()
    gen = torch.Generator().manual_seed(4)
    a, b = torch.rand(3, 3, 40, 40, generator=gen), torch.rand(3, 3, 40, 40, generator=gen)
    with torch.no_grad():
        expected = authors(ref.mine_view(a), ref.mine_view(b)).view(-1)
        torch.testing.assert_close(estimator.scores(a, b), expected, atol=1e-5, rtol=1e-5)
    assert expected.std() > 0  # distinct pairs, distinct scores
    named = MINE(ConvPairCritic(), checkpoint=str(critic_file), checkpoint_layout="authors")
    assert torch.equal(named.critic.features[21].running_var, authors.bn5.running_var)


def test_critic_layout_mismatches_are_named(critic_file: Path, tmp_path: Path) -> None:
    with pytest.raises(CriticCheckpointError, match="does not match ConvPairCritic"):
        MINE(ConvPairCritic(), checkpoint=str(critic_file), checkpoint_layout="miga")
    ours = tmp_path / "ours.pt"
    torch.save(ConvPairCritic().state_dict(), ours)
    MINE(ConvPairCritic(), checkpoint=str(ours))  # our own layout is still ours
    with pytest.raises(ValueError, match="checkpoint_layout must be"):
        MINE(ConvPairCritic(), checkpoint=str(ours), checkpoint_layout="theirs")


def test_the_authors_options_read_the_device_once_per_batch(critic_file: Path) -> None:
    """Batch clip, mean loss and the forward clamps add no per-step host read."""
    from miga.utils.host_reads import HostReads

    denoiser, _, inputs = _setting(seed=3)
    counts = []
    for steps in (2, 5):
        cfg = compose_config(
            [
                "attack=miga_unknown_authors",
                "mi_estimator=mine",
                f"mi_estimator.checkpoint={critic_file}",
                f"attack.steps={steps}",
                "attack.features=null",
            ]
        )
        attack = instantiate(cfg.attack)
        with torch.enable_grad(), HostReads() as reads:
            attack(inputs, Victim(denoiser))
        counts.append(reads.count)
    assert counts[0] == counts[1]
