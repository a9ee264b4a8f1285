"""On-disk datasets: ImageNet layouts and label files, paired references, bad input, end to end.

Every fixture is a small tree of generated images in a temporary folder, in the real formats.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image, ImageDraw, ImageFont

from miga.callbacks.results_writer import read_rows
from miga.data.imagenet import IMAGENET10, ImageNet, ilsvrc_wnids
from miga.data.images import BadImageError
from miga.data.paired import PairedImages
from miga.run import build_datamodule
from tests.conftest import REPO, compose_config

TENCH, GOLDFISH = "n01440764", "n01443537"  # two ILSVRC classes outside ImageNet-10
NOT_ILSVRC = "n99999999"
SMALL = {"size": 32, "resize": 40}


def write_image(path: Path, seed: int, mode: str = "RGB", size: tuple[int, int] = (48, 40)):
    """A random image saved in the format its file ending names."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    if mode != "RGB":
        image = image.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def folder_tree(root: Path, split: str = "val", wnids=(*IMAGENET10, TENCH, NOT_ILSVRC)) -> Path:
    """<root>/<split>/<WNID>/{c,a,b}.JPEG (written out of name order)."""
    for k, wnid in enumerate(wnids):
        for j, name in enumerate(("c", "a", "b")):
            write_image(root / split / wnid / f"{name}.JPEG", seed=100 * k + j)
    return root


def flat_val(root: Path, wnids: list[str], per_class: int = 2) -> dict[str, str]:
    """<root>/val/ILSVRC2012_val_<i>.JPEG, classes interleaved; returns {stem: WNID}."""
    truth = {}
    i = 0
    for _ in range(per_class):
        for wnid in wnids:
            i += 1
            stem = f"ILSVRC2012_val_{i:08d}"
            write_image(root / "val" / f"{stem}.JPEG", seed=i)
            truth[stem] = wnid
    return truth


def write_kaggle_csv(path: Path, truth: dict[str, str]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ImageId", "PredictionString"])
        for stem, wnid in truth.items():
            writer.writerow([stem, f"{wnid} 10 20 30 40 {wnid} 1 2 3 4 "])
    return path


def labels_by_folder(dataset: ImageNet) -> list[tuple[str, int]]:
    return [(path.parent.name, label) for path, label in dataset.samples]


# --------------------------------------------------------------------------- ImageNet, folders


def test_class_folders_imagenet10_selects_exactly_the_ten_classes_in_wnid_order(tmp_path):
    dataset = ImageNet(folder_tree(tmp_path), **SMALL)
    assert len(dataset) == 30
    assert {wnid for wnid, _ in labels_by_folder(dataset)} == set(IMAGENET10)
    for wnid, label in labels_by_folder(dataset):
        assert label == IMAGENET10.index(wnid)
    assert [p.name for p, _ in dataset.samples[:3]] == ["a.JPEG", "b.JPEG", "c.JPEG"]
    item = dataset[4]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    assert item["label"] == 1 and item["index"] == 4
    assert dataset.class_names[0] == "king penguin"
    assert dataset.skipped == 0 and dataset.skipped_files == []


def test_limit_keeps_the_first_files_of_each_class_by_sorted_name(tmp_path):
    dataset = ImageNet(folder_tree(tmp_path), limit=2, **SMALL)
    assert len(dataset) == 20
    assert {p.name for p, _ in dataset.samples} == {"a.JPEG", "b.JPEG"}
    again = ImageNet(tmp_path, limit=2, **SMALL)
    assert torch.equal(dataset[7]["image"], again[7]["image"])


def test_all_classes_gives_sorted_wnid_labels(tmp_path, caplog):
    wnids = ilsvrc_wnids()
    assert len(wnids) == 1000 and wnids == sorted(wnids)
    with caplog.at_level(logging.WARNING):
        dataset = ImageNet(folder_tree(tmp_path), classes="all", **SMALL)
    assert len(dataset) == 33  # ImageNet-10 + tench; the non-ILSVRC folder is ignored
    for wnid, label in labels_by_folder(dataset):
        assert label == wnids.index(wnid)
    assert dataset.samples[0][1] == 0  # tench is class 0 of ILSVRC
    assert "989 of 1000 classes have no images" in caplog.text


def test_an_explicit_wnid_list_labels_in_list_order(tmp_path):
    dataset = ImageNet(folder_tree(tmp_path), classes=[TENCH, IMAGENET10[3]], **SMALL)
    assert sorted({(w, label) for w, label in labels_by_folder(dataset)}) == [
        (TENCH, 0),
        (IMAGENET10[3], 1),
    ]
    with pytest.raises(ValueError, match="WNIDs"):
        ImageNet(tmp_path, classes=["penguin"], **SMALL)
    with pytest.raises(ValueError, match="imagenet10"):
        ImageNet(tmp_path, classes="imagenet100", **SMALL)


def test_a_missing_class_folder_is_tolerated_with_a_warning(tmp_path, caplog):
    folder_tree(tmp_path)
    shutil.rmtree(tmp_path / "val" / IMAGENET10[0])
    with caplog.at_level(logging.WARNING):
        dataset = ImageNet(tmp_path, **SMALL)
    assert len(dataset) == 27 and min(label for _, label in dataset.samples) == 1
    assert "1 of 10 classes have no images" in caplog.text and IMAGENET10[0] in caplog.text


def test_the_train_split_and_missing_folders(tmp_path):
    folder_tree(tmp_path, split="train")
    assert len(ImageNet(tmp_path, split="train", **SMALL)) == 30
    with pytest.raises(FileNotFoundError, match="split 'val'"):
        ImageNet(tmp_path, **SMALL)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        ImageNet(tmp_path / "nowhere", **SMALL)
    with pytest.raises(BadImageError, match="no usable images"):
        ImageNet(tmp_path, split="train", classes=[GOLDFISH], **SMALL)


def test_an_empty_class_folder_raises_or_is_counted(tmp_path):
    folder_tree(tmp_path)
    empty = tmp_path / "val" / IMAGENET10[2]
    shutil.rmtree(empty)
    empty.mkdir()
    with pytest.raises(BadImageError, match=f"{IMAGENET10[2]}.*holds no images"):
        ImageNet(tmp_path, **SMALL)
    dataset = ImageNet(tmp_path, on_bad_image="skip", **SMALL)
    assert len(dataset) == 27 and dataset.skipped == 1
    assert dataset.skipped_files[0].startswith(str(empty))


def test_corrupt_and_truncated_images_raise_or_are_skipped_and_counted(tmp_path):
    folder_tree(tmp_path)
    truncated = truncate(tmp_path / "val" / IMAGENET10[1] / "a.JPEG")
    garbage = tmp_path / "val" / IMAGENET10[4] / "b.JPEG"
    garbage.write_bytes(b"this is not a JPEG")
    (tmp_path / "val" / IMAGENET10[4] / "notes.txt").write_text("not an image, ignored")
    with pytest.raises(BadImageError, match="a.JPEG: unreadable image"):
        ImageNet(tmp_path, **SMALL)
    dataset = ImageNet(tmp_path, on_bad_image="skip", **SMALL)
    assert dataset.skipped == 2
    assert sorted(dataset.skipped_files) == sorted([str(truncated), str(garbage)])
    assert len(dataset) == 28
    for wnid, label in labels_by_folder(dataset):  # no label shifted by a skip
        assert label == IMAGENET10.index(wnid)
    # With a limit, the next usable file takes the skipped one's place.
    limited = ImageNet(tmp_path, on_bad_image="skip", limit=2, **SMALL)
    assert [p.name for p, label in limited.samples if label == 1] == ["b.JPEG", "c.JPEG"]


def test_grayscale_cmyk_rgba_and_palette_images_are_converted_and_counted(tmp_path):
    folder_tree(tmp_path)
    odd = {
        "a.JPEG": "L",
        "b.JPEG": "CMYK",
    }
    for name, mode in odd.items():
        write_image(tmp_path / "val" / IMAGENET10[0] / name, seed=7, mode=mode)
    (tmp_path / "val" / IMAGENET10[0] / "c.JPEG").unlink()
    write_image(tmp_path / "val" / IMAGENET10[0] / "c.png", seed=8, mode="RGBA")
    write_image(tmp_path / "val" / IMAGENET10[0] / "d.png", seed=9, mode="P")
    dataset = ImageNet(tmp_path, **SMALL)
    assert len(dataset.converted_files) == 4 and dataset.skipped == 0
    for index in range(4):
        assert dataset[index]["image"].shape == (3, 32, 32)
    gray = dataset[0]["image"]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    skipping = ImageNet(tmp_path, on_non_rgb="skip", **SMALL)
    assert skipping.skipped == 4 and len(skipping) == 27
    with pytest.raises(BadImageError, match="mode L, not RGB"):
        ImageNet(tmp_path, on_non_rgb="raise", **SMALL)


# --------------------------------------------------------------------------- ImageNet, label files


def test_flat_val_folder_with_the_kaggle_csv(tmp_path):
    wnids = [IMAGENET10[5], TENCH, IMAGENET10[0]]
    truth = flat_val(tmp_path, wnids, per_class=2)
    write_kaggle_csv(tmp_path / "LOC_val_solution.csv", truth)
    dataset = ImageNet(tmp_path, **SMALL)
    assert len(dataset) == 4  # the tench images are not ImageNet-10
    for path, label in dataset.samples:
        assert label == IMAGENET10.index(truth[path.stem])
    assert [label for _, label in dataset.samples] == [0, 0, 5, 5]
    everything = ImageNet(tmp_path, classes="all", **SMALL)
    assert len(everything) == 6
    for path, label in everything.samples:
        assert label == ilsvrc_wnids().index(truth[path.stem])


def test_the_kaggle_csv_is_found_above_the_root_like_the_kaggle_release(tmp_path):
    root = tmp_path / "ILSVRC" / "Data" / "CLS-LOC"
    truth = flat_val(root, [IMAGENET10[1]], per_class=3)
    write_kaggle_csv(tmp_path / "LOC_val_solution.csv", truth)
    assert len(ImageNet(root, **SMALL)) == 3
    elsewhere = write_kaggle_csv(tmp_path / "labels.csv", truth)
    (tmp_path / "LOC_val_solution.csv").unlink()
    with pytest.raises(FileNotFoundError, match="LOC_val_solution.csv"):
        ImageNet(root, **SMALL)
    assert len(ImageNet(root, label_file=elsewhere, **SMALL)) == 3


def test_a_label_file_naming_a_missing_image_raises_or_is_counted(tmp_path):
    truth = flat_val(tmp_path, [IMAGENET10[2], IMAGENET10[3]], per_class=2)
    write_kaggle_csv(tmp_path / "LOC_val_solution.csv", {**truth, "ILSVRC2012_val_00000099": TENCH})
    assert len(ImageNet(tmp_path, **SMALL)) == 4  # a missing image of an unwanted class: no matter
    missing = write_kaggle_csv(
        tmp_path / "LOC_val_solution.csv", {**truth, "ILSVRC2012_val_00000099": IMAGENET10[3]}
    )
    with pytest.raises(BadImageError, match="ILSVRC2012_val_00000099: named by the label file"):
        ImageNet(tmp_path, label_file=missing, **SMALL)
    dataset = ImageNet(tmp_path, on_bad_image="skip", **SMALL)
    assert len(dataset) == 4 and dataset.skipped == 1
    assert dataset.skipped_files == [str(tmp_path / "val" / "ILSVRC2012_val_00000099")]


def test_an_image_the_label_file_does_not_name_is_never_given_a_label(tmp_path):
    truth = flat_val(tmp_path, [IMAGENET10[2]], per_class=2)
    write_kaggle_csv(tmp_path / "LOC_val_solution.csv", truth)
    stray = write_image(tmp_path / "val" / "holiday.jpg", seed=3)
    with pytest.raises(BadImageError, match="holiday.jpg: not named in the label file"):
        ImageNet(tmp_path, **SMALL)
    dataset = ImageNet(tmp_path, on_bad_image="skip", **SMALL)
    assert dataset.skipped_files == [str(stray)] and len(dataset) == 2


def test_a_malformed_kaggle_csv_is_refused(tmp_path):
    flat_val(tmp_path, [IMAGENET10[2]], per_class=1)
    (tmp_path / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\nILSVRC2012_val_00000001,cat\n"
    )
    with pytest.raises(BadImageError, match="no WNID"):
        ImageNet(tmp_path, **SMALL)
    (tmp_path / "LOC_val_solution.csv").write_text("id,label\n")
    with pytest.raises(BadImageError, match="header"):
        ImageNet(tmp_path, **SMALL)


def test_flat_val_folder_with_the_devkit_ground_truth(tmp_path):
    from scipy.io import savemat

    # The devkit numbers classes by its own order (ILSVRC2012_ID), not by sorted WNID.
    devkit_order = [IMAGENET10[9], IMAGENET10[0], TENCH]
    synsets = np.array(
        [(i + 1, wnid) for i, wnid in enumerate(devkit_order)],
        dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O")],
    )
    data = tmp_path / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    savemat(str(data / "meta.mat"), {"synsets": synsets})
    truth = flat_val(tmp_path, [IMAGENET10[0], IMAGENET10[9], TENCH], per_class=2)
    ground_truth = data / "ILSVRC2012_validation_ground_truth.txt"
    ground_truth.write_text("".join(f"{devkit_order.index(w) + 1}\n" for w in truth.values()))
    dataset = ImageNet(tmp_path, label_file=ground_truth, **SMALL)
    assert len(dataset) == 4
    for path, label in dataset.samples:
        assert label == IMAGENET10.index(truth[path.stem])
    (data / "meta.mat").unlink()
    with pytest.raises(FileNotFoundError, match="meta.mat"):
        ImageNet(tmp_path, label_file=ground_truth, **SMALL)


# --------------------------------------------------------------------------- paired references


def test_pairs_in_one_folder_match_by_name_in_natural_order(tmp_path):
    for i in (10, 2, 1):
        write_image(tmp_path / f"{i}.png", seed=i, size=(60, 40))
        write_image(tmp_path / f"{i}_target.jpg", seed=100 + i, size=(50, 50))
    dataset = PairedImages(tmp_path, size=32)
    assert dataset.names == ["1", "2", "10"]
    assert [t.name for _, t in dataset.pairs] == ["1_target.jpg", "2_target.jpg", "10_target.jpg"]
    item = dataset[2]
    assert set(item) == {"image", "reference", "index"} and item["index"] == 2
    assert item["image"].shape == item["reference"].shape == (3, 32, 32)
    assert not torch.equal(item["image"], item["reference"])


def test_pairs_in_origin_and_target_folders_match_by_stem(tmp_path):
    for name in ("cat", "boat", "apple"):
        write_image(tmp_path / "origin" / f"{name}.png", seed=len(name))
        write_image(tmp_path / "target" / f"{name}.png", seed=10 + len(name))
    (tmp_path / "origin" / "README.txt").write_text("ignored")
    dataset = PairedImages(tmp_path, size=24, resize=30, limit=2)
    assert dataset.names == ["apple", "boat"]
    assert all(o.stem == t.stem and t.parent.name == "target" for o, t in dataset.pairs)
    assert dataset[1]["reference"].shape == (3, 24, 24)


def test_a_pair_without_its_target_raises_or_is_counted(tmp_path):
    for i in range(3):
        write_image(tmp_path / "origin" / f"{i}.png", seed=i)
    write_image(tmp_path / "target" / "0.png", seed=5)
    write_image(tmp_path / "target" / "2.png", seed=6)
    write_image(tmp_path / "target" / "7.png", seed=7)
    with pytest.raises(BadImageError, match="7.png: reference without its original"):
        PairedImages(tmp_path, size=16)
    (tmp_path / "target" / "7.png").unlink()
    with pytest.raises(BadImageError, match="1.png: original image without its reference"):
        PairedImages(tmp_path, size=16)
    dataset = PairedImages(tmp_path, size=16, on_bad_image="skip")
    assert dataset.names == ["0", "2"] and dataset.skipped == 1
    assert dataset.skipped_files == [str(tmp_path / "origin" / "1.png")]


def test_unreadable_pairs_and_ambiguous_names(tmp_path):
    for i in range(3):
        write_image(tmp_path / f"{i}.png", seed=i)
        write_image(tmp_path / f"{i}_target.png", seed=9 + i)
    truncate(tmp_path / "1_target.png")
    with pytest.raises(BadImageError, match="1_target.png: unreadable"):
        PairedImages(tmp_path, size=16)
    dataset = PairedImages(tmp_path, size=16, on_bad_image="skip")
    assert dataset.names == ["0", "2"] and dataset.skipped == 1
    write_image(tmp_path / "2.jpg", seed=4)
    with pytest.raises(BadImageError, match="share the name '2'"):
        PairedImages(tmp_path, size=16)
    with pytest.raises(FileNotFoundError, match="paired dataset root"):
        PairedImages(tmp_path / "absent", size=16)


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize("name", ["imagenet", "paired", "text", "style", "object", "edit"])
def test_dataset_configs_build_their_datamodules(tmp_path, name):
    if name == "imagenet":
        folder_tree(tmp_path)
    else:
        for i in range(2):
            write_image(tmp_path / f"{i}.png", seed=i)
            write_image(tmp_path / f"{i}_target.png", seed=i + 1)
    cfg = compose_config([f"dataset={name}", f"dataset.root={tmp_path}", "dataset.size=32"])
    datamodule = build_datamodule(cfg)
    batch = next(iter(datamodule.predict_dataloader()))
    assert batch["image"].shape[1:] == (3, 32, 32)
    assert ("label" in batch) == (name == "imagenet")
    assert ("reference" in batch) == (name != "imagenet")
    assert datamodule.dataset.skipped == 0


def test_dataset_defaults_point_under_paths_data():
    cfg = compose_config(["dataset=imagenet"])
    assert cfg.dataset.root == str(REPO / "data" / "imagenet")
    assert cfg.dataset.split == "val" and cfg.dataset.classes == "imagenet10"
    assert (cfg.dataset.resize, cfg.dataset.size) == (256, 224)
    with pytest.raises(Exception, match="dataset.root") as error:
        instantiate(compose_config(["dataset=text", "dataset.root=/no/such/dir"]).dataset)
    assert isinstance(error.value.__cause__, FileNotFoundError)  # Hydra wraps the error


# --------------------------------------------------------------------------- end to end


def run_miga(*overrides: str, multirun: bool = False) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "miga.run", *(["-m"] if multirun else []), *overrides]
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


# MIGA against the reference with a random (untrained) MINE critic, one step. `attack=miga_unknown`
# is the same with an unbounded budget; `attack=miga` + these keys keeps the test independent of it.
UNKNOWN_TASK_ATTACK = (
    "attack=miga",
    "attack.rec_target=reference",
    "attack.lambda_mi=0.01",
    "attack.steps=1",
    "mi_estimator.checkpoint=null",
    "mi_estimator.allow_random=true",
)


def text_image(path: Path, text: str) -> None:
    font_file = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if not font_file.is_file():
        pytest.skip(f"{font_file} missing (apt-get install -y fonts-dejavu-core)")
    font = ImageFont.truetype(str(font_file), 13)
    image = Image.new("RGB", (96, 96), "white")
    ImageDraw.Draw(image).multiline_text((4, 30), text, font=font, fill="black")
    image.save(path)


@pytest.mark.slow
def test_imagenet_cell_end_to_end_with_a_skipped_file(tmp_path):
    root = folder_tree(tmp_path / "imagenet")
    truncate(root / "val" / IMAGENET10[3] / "a.JPEG")
    net = __import__("timm").create_model("resnet18", num_classes=10)
    torch.save(net.state_dict(), tmp_path / "resnet18_in10.pth")
    run_dir = tmp_path / "run"
    run_miga(
        f"hydra.run.dir={run_dir}",
        "dataset=imagenet",
        f"dataset.root={root}",
        "dataset.limit=1",
        "dataset.size=32",
        "dataset.resize=40",
        "dataset.on_bad_image=skip",
        "loader.batch_size=5",
        "downstream=timm",
        "downstream.model_name=resnet18",
        "downstream.num_classes=10",
        f"downstream.checkpoint={tmp_path / 'resnet18_in10.pth'}",
        "downstream.input_size=64",
        "attack.steps=1",
        "logger=none",
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = read_rows(run_dir / "samples.csv")
    assert summary["n_images"] == 10 == len(rows)
    assert sorted(row["label"] for row in rows) == list(range(10))
    for key in ("acc_clean", "acc_denoised", "acc_attacked", "psnr_attacked", "success_rate"):
        assert key in summary
    assert summary["n_skipped_files"] == 1  # the run puts the dataset's `skipped` into it


@pytest.mark.slow
def test_text_cell_end_to_end_scores_ocr(tmp_path):
    if shutil.which("tesseract") is None:
        pytest.skip("the tesseract engine is not installed (make install)")
    root = tmp_path / "text"
    (root / "origin").mkdir(parents=True)
    (root / "target").mkdir()
    for i, (text, altered) in enumerate(
        [("OPEN\nDAILY", "SHUT\nDAILY"), ("EXIT\nLEFT", "EXIT\nRIGHT")]
    ):
        text_image(root / "origin" / f"{i}.png", text)
        text_image(root / "target" / f"{i}.png", altered)
    run_dir = tmp_path / "run"
    run_miga(
        f"hydra.run.dir={run_dir}",
        "dataset=text",
        "metrics=ocr",
        "mi_estimator=mine",
        f"dataset.root={root}",
        "dataset.size=96",
        *UNKNOWN_TASK_ATTACK,
        "logger=none",
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n_images"] == 2
    for key in (
        "rouge_denoised",
        "rouge_attacked",
        "rouge_attacked_vs_reference",
        "psnr_attacked_vs_reference",
        "ssim_attacked_vs_reference",
        "psnr_denoised",
    ):
        assert key in summary
    rows = read_rows(run_dir / "samples.csv")
    for row in rows:
        assert row["steps"] == 1
        for key in ("rouge_denoised", "rouge_attacked", "rouge_attacked_vs_reference"):
            assert np.isnan(row[key]) or 0.0 <= row[key] <= 1.0


@pytest.mark.slow
def test_style_object_edit_cells_end_to_end_in_one_multirun(tmp_path):
    for kind in ("style", "object", "edit"):
        root = tmp_path / kind
        for i in range(3):
            if kind == "object":
                write_image(root / "origin" / f"{i}.png", seed=i, size=(40, 40))
                write_image(root / "target" / f"{i}.png", seed=10 + i, size=(40, 40))
            else:
                write_image(root / f"{i}.png", seed=i, size=(40, 40))
                write_image(root / f"{i}_target.png", seed=10 + i, size=(40, 40))
    sweep = tmp_path / "sweep"
    run_miga(
        f"hydra.sweep.dir={sweep}",
        "hydra.sweep.subdir=${hydra.job.num}",  # the override-named folder would be too long
        "dataset=style,object,edit",
        # `++`: the multirun composes the default dataset (no root key) once before the sweep
        f"++dataset.root={tmp_path}/${{hydra:runtime.choices.dataset}}",
        "dataset.size=32",
        "metrics=paired_features",
        "metrics.feature_model.model_name=resnet18",
        "metrics.feature_model.checkpoint=null",
        "metrics.feature_model.input_size=32",
        "mi_estimator=mine",
        *UNKNOWN_TASK_ATTACK,
        "logger=none",
        multirun=True,
    )
    summaries = {p.parent.name: p for p in sweep.glob("*/summary.json")}
    assert len(summaries) == 3, sorted(summaries)
    for path in summaries.values():
        summary = json.loads(path.read_text())
        assert summary["n_images"] == 3
        for key in (
            "psnr_attacked_vs_reference",
            "ssim_attacked_vs_reference",
            "feat_cos_attacked_clean",
            "feat_cos_attacked_reference",
            "psnr_attacked",
        ):
            assert key in summary, key
        assert "acc_attacked" not in summary
        rows = read_rows(path.parent / "samples.csv")
        assert [row["id"] for row in rows] == [0, 1, 2]
