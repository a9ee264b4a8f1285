"""The worst case over an ensemble (attack=worst_case) and Square, on tiny models.

What is held: no image is counted broken that no member broke (the ensemble's successes are the
union of the members' run alone); `broken_by` is the first member, in order, that broke the
image; the kept δ is that member's, bit-equal to the member run alone on the same sub-batch;
later members see only survivors; a break only Square finds, through a quantised (zero-gradient)
model, is flagged `masked_gradient`; the summary keys are reductions of the rows. Square: the
p-schedule and δ equal to torchattacks 3.5.1's on one image with a shared seed, the ε-ball, a
non-increasing margin, and that it breaks a weak model.
"""

from __future__ import annotations

import logging
import math
from functools import partial

import pytest
import torch
from hydra.utils import instantiate
from torch import Tensor, nn

from miga.attacks import IFGSM
from miga.attacks.base import Attack, AttackResult
from miga.attacks.budgets import L2Ball, LinfBall
from miga.attacks.optim import SignGradientDescent
from miga.attacks.square import STREAM, Square, margin, p_selection
from miga.attacks.state import AttackInputs, Victim
from miga.attacks.worst_case import WorstCase
from miga.callbacks.results_writer import columns_to_rows, read_rows, rows_to_csv
from miga.metrics.intervals import wilson
from miga.metrics.scorers import AttackBookkeeping, Classification
from miga.metrics.summary import summarize
from miga.utils.seeding import sample_seed
from tests.conftest import compose_config
from tests.helpers import make_outcome

EPS = 16 / 255
N, C, H, W, CLASSES = 12, 3, 8, 8, 4


class TinyClassifier(nn.Module):
    """A fixed random linear classifier; `quantise` rounds its input to 8 bits first, a step
    whose gradient is zero everywhere while its output still moves with the input."""

    def __init__(self, quantise: bool = False) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(7)
        self.weight = nn.Parameter(torch.randn(CLASSES, C * H * W, generator=generator) * 0.3)
        self.quantise = quantise

    def forward(self, x: Tensor) -> Tensor:
        if self.quantise:
            x = torch.round(x * 255) / 255
        return x.flatten(1) @ self.weight.T


def tiny_inputs(classifier: nn.Module, denoiser: nn.Module) -> AttackInputs:
    """12 random images; labels = the classifier's class on D(x_n), except images 0 and 1 whose
    label is another class (not eligible)."""
    generator = torch.Generator().manual_seed(3)
    clean = torch.rand(N, C, H, W, generator=generator) * 0.8 + 0.1
    noisy = (clean + 0.02 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
    with torch.no_grad():
        denoised = denoiser(noisy)
        label = classifier(denoised).argmax(1)
    label[:2] = (label[:2] + 1) % CLASSES
    index = torch.arange(100, 100 + N)
    return AttackInputs(clean, noisy, denoised, index, label=label, seed=5)


def ifgsm(step: float, steps: int) -> IFGSM:
    return IFGSM(steps, partial(SignGradientDescent, lr=step), LinfBall(EPS))


def members() -> dict[str, Attack]:
    """A weak gradient member, a strong one, Square last."""
    return {
        "weak": ifgsm(EPS / 4, 1),  # one small sign step
        "strong": ifgsm(2 / 255, 10),
        "square": Square(LinfBall(EPS), n_queries=300),
    }


class MildSmoothing(nn.Module):
    """A tiny fixed "denoiser": 3/4 of the input plus 1/4 of its 3×3 mean."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: Tensor) -> Tensor:
        return 0.75 * x + 0.25 * self.pool(x)


@pytest.fixture(scope="module")
def victim() -> Victim:
    return Victim(MildSmoothing().eval(), TinyClassifier().eval().requires_grad_(False))


def broken(victim: Victim, inputs: AttackInputs, delta: Tensor) -> Tensor:
    with torch.no_grad():
        return victim.downstream(victim.denoise(inputs.noisy + delta)).argmax(1) != inputs.label


def run(attack: Attack, inputs: AttackInputs, victim: Victim) -> AttackResult:
    with torch.enable_grad():
        return attack(inputs, victim)


# ------------------------------------------------------------------------------ worst case


def test_successes_are_the_union_and_broken_by_is_the_first_member(victim):
    inputs = tiny_inputs(victim.downstream, victim.denoiser)
    eligible = victim.downstream(inputs.denoised).argmax(1) == inputs.label
    alone = {name: broken(victim, inputs, run(m, inputs, victim).delta) & eligible
             for name, m in members().items()}
    result = run(WorstCase(members()), inputs, victim)

    union = torch.stack(list(alone.values())).any(0)
    ensemble = torch.tensor([name != "" for name in result.broken_by])
    assert ensemble.tolist() == union.tolist()
    assert 0 < int(union.sum()) < int(eligible.sum())  # the case is not trivial: some survive
    first = [next((n for n, hit in alone.items() if hit[i]), "") for i in range(N)]
    assert result.broken_by == first
    assert len(set(first) - {""}) >= 2  # more than one member contributes
    assert result.eligible.tolist() == eligible.tolist()
    assert result.broken_by[:2] == ["", ""]  # not eligible: not attacked
    assert torch.equal(result.delta[:2], torch.zeros_like(result.delta[:2]))
    # every kept δ breaks its image and is in the ball; survivors keep δ = 0
    assert broken(victim, inputs, result.delta)[ensemble].all()
    assert result.delta.abs().max() <= EPS + 1e-7
    assert torch.equal(result.delta[~ensemble], torch.zeros_like(result.delta[~ensemble]))


def test_kept_delta_is_the_first_successful_members_own(victim):
    """Bit-equal to each member run alone on the sub-batch it saw (same images, same batch
    composition: no rounding tolerance is needed)."""
    inputs = tiny_inputs(victim.downstream, victim.denoiser)
    result = run(WorstCase(members()), inputs, victim)
    survivors = victim.downstream(inputs.denoised).argmax(1) == inputs.label
    for name, member in members().items():
        sub = inputs.select(survivors)
        own = run(member, sub, victim).delta
        rows = survivors.nonzero().squeeze(1)
        mine = torch.tensor([result.broken_by[i] == name for i in rows.tolist()])
        assert torch.equal(result.delta[rows][mine], own[mine])
        survivors = survivors.clone()
        survivors[rows[mine]] = False


class Recording(IFGSM):
    """I-FGSM that records the dataset indices of each batch it is given."""

    def forward(self, inputs, victim, sensor=None):  # noqa: ANN001, ANN201
        self.seen = inputs.index.tolist()
        return super().forward(inputs, victim, sensor)


def test_later_members_see_only_survivors(victim):
    inputs = tiny_inputs(victim.downstream, victim.denoiser)
    first = Recording(1, partial(SignGradientDescent, lr=EPS), LinfBall(EPS))
    second = Recording(1, partial(SignGradientDescent, lr=EPS), LinfBall(EPS))
    result = run(WorstCase({"first": first, "second": second}), inputs, victim)
    eligible = [i for i, e in zip(inputs.index.tolist(), result.eligible.tolist()) if e]
    assert first.seen == eligible
    by_first = {i for i, name in zip(inputs.index.tolist(), result.broken_by) if name == "first"}
    assert by_first and second.seen == [i for i in eligible if i not in by_first]


def test_square_only_break_is_flagged_masked_gradient(caplog):
    """Through an 8-bit quantisation the gradient is zero: I-FGSM cannot move, Square can."""
    quantised = Victim(nn.Identity(), TinyClassifier(quantise=True).eval().requires_grad_(False))
    inputs = tiny_inputs(quantised.downstream, quantised.denoiser)
    attack = WorstCase({"ifgsm": ifgsm(2 / 255, 10), "square": Square(LinfBall(EPS), 300)})
    with caplog.at_level(logging.WARNING, logger="miga.attacks.worst_case"):
        result = run(attack, inputs, quantised)
    by_square = torch.tensor([name == "square" for name in result.broken_by])
    assert "ifgsm" not in result.broken_by and int(by_square.sum()) >= 2
    assert result.masked_gradient.tolist() == by_square.tolist()
    assert "gradients are masked" in caplog.text
    # the same model without the rounding: the gradient member breaks them, nothing is flagged
    plain = Victim(nn.Identity(), TinyClassifier().eval().requires_grad_(False))
    result = run(attack, tiny_inputs(plain.downstream, plain.denoiser), plain)
    assert "ifgsm" in result.broken_by and not result.masked_gradient.any()


def test_square_first_is_no_masking_check(victim):
    """A gradient-free member before gradient members: its breaks were not missed by them."""
    attack = WorstCase({"square": Square(LinfBall(EPS), 300), "strong": ifgsm(2 / 255, 10)})
    result = run(attack, tiny_inputs(victim.downstream, victim.denoiser), victim)
    assert "square" in result.broken_by and not result.masked_gradient.any()


def test_rows_and_summary(victim, tmp_path):
    """The module's scorers on the kept δ: robust_accuracy, its Wilson interval, the per-member
    counts and n_masked_gradient are reductions of the rows (through the CSV round trip)."""
    inputs = tiny_inputs(victim.downstream, victim.denoiser)
    result = run(WorstCase(members()), inputs, victim)
    perturbed = inputs.noisy + result.delta
    outcome = make_outcome(
        inputs.clean, noisy=inputs.noisy, denoised=inputs.denoised, perturbed=perturbed,
        attacked=victim.denoiser(perturbed), delta=result.delta, result=result,
        label=inputs.label, downstream=victim.downstream,
    )
    columns = {**Classification()(outcome), **AttackBookkeeping()(outcome)}
    text = rows_to_csv(columns_to_rows(inputs.index, columns))
    (tmp_path / "samples.csv").write_text(text)
    rows = read_rows(tmp_path / "samples.csv")
    summary = summarize(rows)

    eligible = [r for r in rows if not math.isnan(r["robust"])]
    survivors = [r for r in eligible if r["broken_by"] == ""]
    assert len(eligible) == N - 2
    assert summary["robust_accuracy"] == len(survivors) / len(eligible)
    assert summary["robust_accuracy_ci95"] == list(wilson(len(survivors), len(eligible)))
    # scored on the whole batch, the kept δ flips exactly the images the ensemble broke
    assert summary["success_rate"] == pytest.approx(1 - summary["robust_accuracy"])
    for name in ("weak", "strong", "square"):
        count = sum(r["broken_by"] == name for r in rows)
        assert summary.get(f"broken_by_{name}", 0) == count
    assert sum(v for k, v in summary.items() if k.startswith("broken_by_")) == (
        len(eligible) - len(survivors)
    )
    assert summary["n_masked_gradient"] == sum(r["masked_gradient"] for r in rows)


def test_config_composes_members_in_order():
    cfg = compose_config(["attack=worst_case", "attack.members.square.n_queries=7"])
    names = list(cfg.attack.members)
    assert names[:2] == ["miga", "ifgsm"] and names[-1] == "square"
    assert cfg.attack.members.ifgsm.optimizer.lr == pytest.approx(0.25 / 255)
    attack = instantiate(cfg.attack)
    assert list(attack.members) == names and attack.members["square"].n_queries == 7
    assert attack.checks_masking[-1] and not any(attack.checks_masking[:-1])


def test_bad_member_names_and_members_are_refused():
    with pytest.raises(ValueError, match="attack.members key 'not a name'"):
        WorstCase({"not a name": Square(LinfBall(EPS))})
    with pytest.raises(TypeError, match="attack.members.x must be an attack"):
        WorstCase({"x": nn.Identity()})
    with pytest.raises(ValueError, match="at least one"):
        WorstCase({})


# ---------------------------------------------------------------------------------- Square


def test_p_schedule_is_torchattacks():
    torchattacks = pytest.importorskip("torchattacks")
    for n_queries, rescale in ((5000, True), (300, True), (10000, False)):
        theirs = torchattacks.Square(nn.Identity(), n_queries=n_queries, resc_schedule=rescale)
        for it in range(n_queries):
            assert p_selection(0.8, it, n_queries, rescale) == theirs.p_selection(it)
    assert p_selection(0.8, 0, 5000) == 0.8 and p_selection(0.8, 4999, 5000) == 0.8 / 512


def test_square_matches_torchattacks_on_one_image(victim):
    """Same draws from the same seed: torchattacks seeds its global RNG with `seed`, ours a
    per-sample generator with sample_seed(seed, "square", index)."""
    torchattacks = pytest.importorskip("torchattacks")
    inputs = tiny_inputs(victim.downstream, victim.denoiser)
    model = nn.Sequential(victim.denoiser, victim.downstream).eval()
    matched = 0
    for i in range(2, N):
        one = inputs.select(torch.arange(N) == i)
        ours = Square(LinfBall(EPS), n_queries=100)(one, victim)
        seed = sample_seed(one.seed, int(one.index), STREAM)
        theirs = torchattacks.Square(model, eps=EPS, n_queries=100, seed=seed)(one.noisy, one.label)
        if ours.stopped.item():  # torchattacks returns x itself where it found nothing
            assert torch.equal(one.noisy + ours.delta, theirs)
            matched += 1
    assert matched >= 3


def test_square_stays_in_the_ball_and_its_margin_never_rises(victim):
    inputs = tiny_inputs(victim.downstream, victim.denoiser)
    previous = None
    for n_queries in (0, 5, 20, 60):  # without rescaling, a run is a prefix of a longer one
        result = Square(LinfBall(EPS), n_queries, rescale_schedule=False)(inputs, victim)
        perturbed = inputs.noisy + result.delta
        assert result.delta.abs().max() <= EPS + 1e-7
        assert perturbed.min() >= 0 and perturbed.max() <= 1
        with torch.no_grad():
            value = margin(victim.downstream(victim.denoiser(perturbed)), inputs.label)
        if previous is not None:
            assert (value <= previous).all()
        previous = value
        assert (result.steps <= n_queries).all()


def test_square_breaks_a_weak_model(victim):
    inputs = tiny_inputs(victim.downstream, victim.denoiser)
    result = Square(LinfBall(EPS), n_queries=300)(inputs, victim)
    hit = broken(victim, inputs, result.delta)[2:]
    assert int(hit.sum()) >= 3  # of 10 eligible; I-FGSM (10 steps) breaks 5
    assert result.stopped[2:].tolist() == hit.tolist()
    # per-sample streams: an image's δ does not depend on the batch it is in
    alone = Square(LinfBall(EPS), n_queries=300)(inputs.select(torch.arange(N) == 5), victim)
    assert torch.allclose(alone.delta[0], result.delta[5], atol=1e-6)


def test_square_refuses_an_l2_budget():
    with pytest.raises(ValueError, match="budget=linf"):
        Square(L2Ball(1.0))
