"""Downstream models (timm classifiers, OCR, feature backbones), their configs, the
semantic scorers and the fine-tuning command."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import timm
import torch
from hydra.utils import instantiate
from PIL import Image, ImageDraw, ImageFont

from miga.checkpoints import CheckpointError
from miga.data.demo_photos import to_tensor
from miga.downstream.classifier import Classifier
from miga.downstream.features import FeatureExtractor, timm_features
from miga.downstream.timm_models import timm_downstream
from miga.metrics.scorers import Outcome
from miga.metrics.semantic import FeatureShift, OCRScorer, ReferenceSimilarity, rouge_l
from miga.metrics.summary import summarize
from tests.conftest import REPO, compose_config
from tests.helpers import make_outcome

SENTENCE = "The quick brown fox jumps over the lazy dog"
ALTERED = "A slow green turtle walks under the busy bridge"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="the tesseract engine is not installed (make install)"
)


def rendered(text: str, size: tuple[int, int] = (320, 72)) -> torch.Tensor:
    """(3,H,W) image of `text` in black DejaVu Sans on white, two lines."""
    if not FONT.is_file():
        pytest.skip(f"{FONT} missing (apt-get install -y fonts-dejavu-core)")
    image = Image.new("RGB", size, "white")
    words = text.split()
    lines = " ".join(words[: len(words) // 2]) + "\n" + " ".join(words[len(words) // 2 :])
    ImageDraw.Draw(image).multiline_text(
        (8, 8), lines, font=ImageFont.truetype(str(FONT), 20), fill="black"
    )
    return to_tensor(image)


def outcome(**images: torch.Tensor) -> Outcome:
    return make_outcome(images.pop("clean"), **images)


def instantiate_error(node) -> BaseException:
    """The error instantiating `node` raises (Hydra wraps it: its cause is the real one)."""
    with pytest.raises(Exception) as info:
        instantiate(node)
    return info.value.__cause__ or info.value


# --------------------------------------------------------------------------- timm classifiers


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    net = timm.create_model("resnet18", num_classes=3).eval()
    path = tmp_path_factory.mktemp("weights") / "resnet18_3.pth"
    torch.save(net.state_dict(), path)
    return path, net


def test_a_local_state_dict_loads_strictly_and_the_model_owns_its_normalisation(resnet18_file):
    path, reference = resnet18_file
    model = timm_downstream("resnet18", path, num_classes=3, input_size=64)
    assert isinstance(model, Classifier) and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    for key, value in reference.state_dict().items():
        assert torch.equal(model.net.state_dict()[key], value), key
    image = torch.rand(2, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(image), reference((image - mean) / std), atol=1e-5)
    assert model(torch.rand(1, 3, 40, 40)).shape == (1, 3)  # resized to 64 first


def test_wrapped_and_safetensors_files_load_too(resnet18_file, tmp_path):
    from safetensors.torch import save_file

    path, reference = resnet18_file
    state = reference.state_dict()
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "train.pth.tar")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    for file in (tmp_path / "train.pth.tar", tmp_path / "model.safetensors"):
        net = timm_downstream("resnet18", file, num_classes=3).net
        assert torch.equal(net.fc.weight, reference.fc.weight)


def test_a_file_of_another_head_or_architecture_is_refused_naming_it(resnet18_file):
    path, _ = resnet18_file
    with pytest.raises(CheckpointError, match=f"{path}.*resnet18.*num_classes=10"):
        timm_downstream("resnet18", path, num_classes=10)
    with pytest.raises(CheckpointError, match=str(path)):
        timm_downstream("resnet18", path)  # 1000-way head expected
    with pytest.raises(CheckpointError, match=str(path)):
        timm_downstream("resnet34", path, num_classes=3)


def test_a_missing_checkpoint_names_the_file_and_null_warns(tmp_path):
    missing = tmp_path / "nowhere" / "resnet18.safetensors"
    with pytest.raises(CheckpointError, match=f"checkpoint not found: {missing}"):
        timm_downstream("resnet18", missing, num_classes=10)
    with pytest.warns(UserWarning, match="RANDOM weights"):
        model = timm_downstream("resnet18", None, num_classes=10, input_size=32)
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 10)


def test_downstream_configs(resnet18_file):
    error = instantiate_error(compose_config(["downstream=resnet50"]).downstream)
    assert isinstance(error, CheckpointError) and "resnet50.a1_in1k.safetensors" in str(error)
    cfg = compose_config(["downstream=resnet50_in10"])
    assert cfg.downstream.checkpoint.endswith("checkpoints/resnet50_in10.pth")
    error = instantiate_error(cfg.downstream)
    assert isinstance(error, CheckpointError) and "resnet50_in10.pth" in str(error)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = instantiate(
            compose_config(
                [
                    "downstream=resnet50_in10",
                    "downstream.checkpoint=null",
                    "downstream.input_size=64",
                ]
            ).downstream
        )
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 10)
    path, _ = resnet18_file
    model = instantiate(
        compose_config(
            [
                "downstream=timm",
                "downstream.model_name=resnet18",
                f"downstream.checkpoint={path}",
                "downstream.num_classes=3",
            ]
        ).downstream
    )
    assert model.input_size == 224  # resnet18's native size (resolve_data_config)
    named = compose_config(["downstream=timm", "downstream.model_name=vit_base_patch16_224"])
    assert named.downstream.checkpoint.endswith("checkpoints/vit_base_patch16_224.safetensors")


# --------------------------------------------------------------------------- feature backbones


def test_feature_similarity_backbone_loads_its_file_then_drops_the_head(resnet18_file):
    path, reference = resnet18_file
    features = timm_features("resnet18", path, num_classes=3, input_size=64)
    assert isinstance(features, FeatureExtractor) and not features.training
    embedding = features(torch.rand(2, 3, 64, 64))
    assert embedding.shape == (2, 512)
    assert torch.equal(features.net.conv1.weight, reference.conv1.weight)
    error = instantiate_error(compose_config(["downstream=feature_similarity"]).downstream)
    assert isinstance(error, CheckpointError) and "resnet50.a1_in1k.safetensors" in str(error)


def test_feature_shift_and_reference_similarity_columns():
    torch.manual_seed(0)
    clean, reference = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    o = outcome(clean=clean, attacked=reference.clone(), reference=reference)
    columns = FeatureShift(torch.nn.Flatten())(o)
    assert torch.allclose(columns["feat_cos_attacked_reference"], torch.ones(2, dtype=torch.double))
    assert torch.allclose(columns["feat_cos_denoised_clean"], torch.ones(2, dtype=torch.double))
    assert (columns["feat_cos_attacked_clean"] < 0.9).all()
    assert FeatureShift(None)(o) == {}
    similarity = ReferenceSimilarity()(o)
    assert torch.all(similarity["psnr_attacked_vs_reference"] == 100.0)
    assert torch.allclose(similarity["ssim_attacked_vs_reference"], torch.ones(2), atol=1e-4)
    assert (similarity["psnr_denoised_vs_reference"] < 20).all()
    assert ReferenceSimilarity()(outcome(clean=clean)) == {}
    with pytest.raises(ValueError, match="same size"):
        ReferenceSimilarity()(outcome(clean=clean, reference=torch.rand(2, 3, 16, 16)))


def test_summary_rules_for_the_new_columns():
    rows = [
        {"rouge_attacked": 0.5, "feat_cos_attacked_clean": 0.2, "psnr_attacked_vs_reference": 20},
        {
            "rouge_attacked": math.nan,
            "feat_cos_attacked_clean": 0.4,
            "psnr_attacked_vs_reference": 30,
        },
    ]
    summary = summarize(rows)
    assert summary["rouge_attacked"] == 0.5  # NaN: no text in x to compare with
    assert math.isclose(summary["feat_cos_attacked_clean"], 0.3)
    assert summary["psnr_attacked_vs_reference"] == 25


def test_metrics_configs_build_their_scorers():
    paired = list(instantiate(compose_config(["metrics=paired"]).metrics.scorers).values())
    assert [type(s).__name__ for s in paired] == [
        "ImageQuality",
        "PerturbationSize",
        "ReferenceSimilarity",
        "AttackBookkeeping",
        "FeatureShift",
    ]
    assert paired[-1].model is None
    cfg = compose_config(
        [
            "metrics=paired_features",
            "metrics.feature_model.model_name=resnet18",
            "metrics.feature_model.checkpoint=null",
        ]
    )
    assert cfg.metrics.grid_images == 8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scorers = instantiate(cfg.metrics.scorers)
    assert isinstance(scorers.feature_shift.model, FeatureExtractor)
    linked = compose_config(
        ["metrics=paired", "downstream=feature_similarity", "metrics.feature_model=${downstream}"]
    )
    assert linked.metrics.scorers.feature_shift.model.model_name == "resnet50"


# --------------------------------------------------------------------------- OCR


def test_rouge_l():
    assert rouge_l(SENTENCE, SENTENCE) == 1.0
    assert rouge_l(SENTENCE.upper() + " !", SENTENCE) == 1.0  # case and punctuation ignored
    assert rouge_l("", SENTENCE) == 0.0
    assert math.isnan(rouge_l(SENTENCE, " ... "))


@needs_tesseract
def test_ocr_reads_a_rendered_sentence_and_nothing_on_a_blank_image():
    ocr = instantiate(compose_config(["downstream=ocr"]).downstream)
    before = os.environ.get("OMP_THREAD_LIMIT")
    texts = ocr(torch.stack([rendered(SENTENCE), torch.ones(3, 72, 320)]))
    assert os.environ.get("OMP_THREAD_LIMIT") == before  # the engine's limit never leaks out
    assert rouge_l(texts[0], SENTENCE) >= 0.9, texts[0]
    assert rouge_l(texts[1], SENTENCE) <= 0.05, texts[1]


@needs_tesseract
def test_ocr_scorer_columns():
    scorer = instantiate(compose_config(["metrics=ocr"]).metrics.scorers.ocr)
    assert isinstance(scorer, OCRScorer)
    clean, altered = rendered(SENTENCE)[None], rendered(ALTERED)[None]
    columns = scorer(outcome(clean=clean, attacked=altered, reference=altered))
    assert columns["rouge_denoised"].item() >= 0.9
    assert columns["rouge_attacked"].item() <= 0.3
    assert columns["rouge_attacked_vs_reference"].item() >= 0.9
    assert columns["ocr_words_clean"].item() >= 8


def test_ocr_scorer_gives_nan_where_the_clean_image_has_no_text():
    fake = lambda images: ["" if float(x.mean()) > 0.99 else SENTENCE for x in images]  # noqa: E731
    blank = torch.ones(1, 3, 8, 8)
    columns = OCRScorer(fake)(outcome(clean=blank, attacked=torch.zeros(1, 3, 8, 8)))
    assert math.isnan(columns["rouge_attacked"].item())
    assert "rouge_attacked_vs_reference" not in columns


# --------------------------------------------------------------------------- fine-tuning


@pytest.mark.slow
def test_finetune_command_writes_a_checkpoint_the_in10_downstream_loads(tmp_path):
    from tests.test_datasets import folder_tree

    folder_tree(tmp_path / "imagenet", split="train")
    folder_tree(tmp_path / "imagenet", split="val")
    start = timm.create_model("test_resnet")  # a 1000-class "ImageNet" start, head replaced
    torch.save(start.state_dict(), tmp_path / "test_resnet_in1k.pth")
    output = tmp_path / "test_resnet_in10.pth"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "miga.zoo.finetune",
            f"hydra.run.dir={tmp_path / 'run'}",
            "model_name=test_resnet",
            f"init_checkpoint={tmp_path / 'test_resnet_in1k.pth'}",
            f"data_root={tmp_path / 'imagenet'}",
            "train.size=32",
            "train.resize=40",
            "val.size=32",
            "val.resize=40",
            "val.limit=1",
            "steps=2",
            "batch_size=4",
            "num_workers=0",
            "trainer.accelerator=cpu",
            f"output={output}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["train_images"] == 30 and report["steps"] == 2
    assert 0.0 <= report["val_accuracy"] <= 1.0
    tuned = timm_downstream("test_resnet", output, num_classes=10, input_size=32)
    assert tuned(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    first, started = tuned.net.state_dict()["conv1.0.weight"], start.state_dict()["conv1.0.weight"]
    assert torch.allclose(first, started, atol=0.05) and not torch.equal(first, started)
