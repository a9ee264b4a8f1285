"""Inputs as the MIGA authors had them: pre-noised files on disk, native sizes padded centred.

Fixtures are small trees of generated images in a temporary folder, written with Pillow; every
expected value is computed here independently (numpy, Pillow) from the files themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from miga.callbacks.image_grid import CAPTION_PX
from miga.callbacks.results_writer import read_rows
from miga.data.collate import PadCenter
from miga.data.imagenet import IMAGENET10, ImageNet
from miga.data.images import BadImageError
from miga.data.make_noisy import make_noisy, noisy_uint8
from miga.data.paired import PairedImages
from miga.metrics.quality import psnr
from miga.run import build_datamodule, build_module
from miga.threats.noise import FromDisk, GaussianNoise
from miga.utils.images import center_offsets, crop_center
from miga.utils.seeding import sample_seed
from tests.conftest import compose_config
from tests.test_datasets import UNKNOWN_TASK_ATTACK, run_miga, write_image


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)


def as_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255.0


def imagenet_pair(tmp_path: Path, sizes=((48, 40), (37, 53))) -> tuple[Path, Path]:
    """A clean class-folder tree (JPEG) and its noisy twin tree (PNG, σ 50) beside it."""
    clean = tmp_path / "imagenet"
    for k, size in enumerate(sizes):
        write_image(clean / "val" / IMAGENET10[k] / f"img{k}.JPEG", seed=k, size=size)
    noisy = tmp_path / "imagenet-noisy-50"
    make_noisy(clean, noisy, sigma=50, seed=3)
    return clean, noisy


# --------------------------------------------------------------------------- writing twins


def test_make_noisy_adds_sigma_noise_to_the_full_image_and_writes_8bit_pngs(tmp_path):
    clean, noisy = imagenet_pair(tmp_path)
    source = clean / "val" / IMAGENET10[1] / "img1.JPEG"
    twin = noisy / "val" / IMAGENET10[1] / "img1.png"
    assert twin.is_file() and Image.open(twin).mode == "RGB" and Image.open(twin).format == "PNG"
    # independently: the clean pixels plus σ·N(0,1) from the documented seed, rounded, clipped
    rng = np.random.default_rng(sample_seed(3, 0, f"make_noisy/val/{IMAGENET10[1]}/img1.JPEG"))
    expected = np.clip(np.rint(pixels(source) + 50 * rng.standard_normal((53, 37, 3))), 0, 255)
    np.testing.assert_array_equal(pixels(twin), expected.astype(np.uint8))
    assert pixels(twin).shape == (53, 37, 3)  # full size: nothing cropped before the noise
    residual = pixels(twin).astype(float) - pixels(source)
    assert 40 < residual.std() < 50  # σ 50, less where clipping bites
    before = twin.read_bytes()
    make_noisy(clean, noisy, sigma=50, seed=3)
    assert twin.read_bytes() == before  # same command, same bytes


def test_noisy_uint8_rounds_and_clips():
    clean = np.array([[[0, 128, 255]]], dtype=np.uint8)
    assert (noisy_uint8(clean, 0.0, seed=1) == clean).all()
    noise = np.random.default_rng(1).standard_normal(clean.shape) * 300
    expected = np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(noisy_uint8(clean, 300.0, seed=1), expected)


# --------------------------------------------------------------------------- reading twins


def test_items_carry_the_noisy_file_transformed_like_the_clean_one(tmp_path):
    clean, noisy = imagenet_pair(tmp_path)
    native = ImageNet(clean, size=None, noisy_root=noisy)
    for index, (k, (w, h)) in enumerate([(0, (48, 40)), (1, (37, 53))]):
        item = native[index]
        twin = noisy / "val" / IMAGENET10[k] / f"img{k}.png"
        assert item["noisy"].shape == (3, h, w)
        assert torch.equal(item["noisy"], as_tensor(pixels(twin)))  # file values / 255, exactly
    cropped = ImageNet(clean, size=32, resize=36, noisy_root=noisy)
    twin = Image.open(noisy / "val" / IMAGENET10[1] / "img1.png").convert("RGB")
    # the authors' eval transform on the noisy file: shorter side to 36 (torchvision truncates
    # the long side: int(36·53/37) = 51), centre 32×32 (torchvision rounds the offset:
    # round(19/2) = 10 rows, round(4/2) = 2 columns), by Pillow directly
    resized = twin.resize((36, 51), Image.BILINEAR)
    top, left = 10, 2
    expected = as_tensor(np.asarray(resized.crop((left, top, left + 32, top + 32))))
    assert cropped[1]["noisy"].shape == (3, 32, 32)
    assert torch.equal(cropped[1]["noisy"], expected)
    assert cropped[1]["image"].shape == (3, 32, 32)


def test_native_pairs_resize_the_reference_to_the_image_and_read_the_twin(tmp_path):
    root = tmp_path / "pairs"
    write_image(root / "origin" / "1.png", seed=1, size=(30, 20))
    write_image(root / "target" / "1.png", seed=2, size=(15, 10))
    make_noisy(root, tmp_path / "noisy", sigma=25)
    pairs = PairedImages(root, size=None, noisy_root=tmp_path / "noisy")
    item = pairs[0]
    assert item["image"].shape == item["noisy"].shape == item["reference"].shape == (3, 20, 30)
    target = Image.open(root / "target" / "1.png").resize((30, 20), Image.BILINEAR)
    assert torch.equal(item["reference"], as_tensor(np.asarray(target)))  # the authors' resize
    assert torch.equal(item["noisy"], as_tensor(pixels(tmp_path / "noisy" / "origin" / "1.png")))
    # the target folder gets twins too (make_noisy mirrors everything), but only origin's are read
    assert not torch.equal(item["noisy"], item["image"])


def test_a_missing_twin_names_the_file_and_the_naming_scheme(tmp_path):
    clean, noisy = imagenet_pair(tmp_path)
    (noisy / "val" / IMAGENET10[0] / "img0.png").unlink()
    with pytest.raises(BadImageError) as error:
        ImageNet(clean, size=None, noisy_root=noisy)
    message = str(error.value)
    assert str(noisy / "val" / IMAGENET10[0] / "img0.JPEG") in message
    assert str(noisy / "val" / IMAGENET10[0] / "img0.png") in message
    assert "dataset.noisy_root mirrors dataset.root" in message
    skipping = ImageNet(clean, size=None, noisy_root=noisy, on_bad_image="skip")
    assert len(skipping) == 1 and skipping.skipped == 1 and skipping[0]["label"] == 1


def test_a_twin_of_another_size_is_refused(tmp_path):
    clean, noisy = imagenet_pair(tmp_path)
    write_image(noisy / "val" / IMAGENET10[0] / "img0.png", seed=9, size=(40, 40))
    with pytest.raises(BadImageError, match="is 40x40 .* is 48x40"):
        ImageNet(clean, size=None, noisy_root=noisy)


def test_noisy_root_must_exist(tmp_path):
    clean, _ = imagenet_pair(tmp_path)
    with pytest.raises(FileNotFoundError, match="dataset.noisy_root"):
        ImageNet(clean, size=None, noisy_root=tmp_path / "nowhere")


def test_from_disk_returns_the_stored_image_and_gaussian_refuses_one():
    clean = torch.rand(2, 3, 5, 4)
    stored = torch.rand(2, 3, 5, 4)
    index = torch.tensor([0, 1])
    assert torch.equal(FromDisk()(clean, index, seed=0, stored=stored), stored)
    with pytest.raises(ValueError, match="dataset.noisy_root"):
        FromDisk()(clean, index, seed=0)
    with pytest.raises(ValueError, match="cannot draw fresh noise"):
        FromDisk()(clean, index, 0, "sensor/eval/0", stored=stored)
    with pytest.raises(ValueError, match="noise=from_disk"):
        GaussianNoise(25)(clean, index, seed=0, stored=stored)


def test_the_cell_attacks_the_files_x_n_without_synthetic_noise(tmp_path):
    clean, noisy = imagenet_pair(tmp_path)
    cfg = compose_config(
        [
            "dataset=imagenet",
            f"dataset.root={clean}",
            f"dataset.noisy_root={noisy}",
            "dataset.size=null",
            "loader=pad_center",
            "noise=from_disk",
            "attack.steps=1",
            "logger=none",
        ]
    )
    data = build_datamodule(cfg)
    batch = next(iter(data.predict_dataloader()))
    inputs = build_module(cfg).attack_inputs(batch)
    for k, (w, h) in enumerate([(48, 40), (37, 53)]):
        top, left = center_offsets(h, w, 53, 48)
        twin = as_tensor(pixels(noisy / "val" / IMAGENET10[k] / f"img{k}.png"))
        assert torch.equal(inputs.noisy[k, :, top : top + h, left : left + w], twin)
    assert torch.equal(batch["size"], torch.tensor([[40, 48], [53, 37]]))


# --------------------------------------------------------------------------- padding


def test_pad_center_places_each_image_at_hand_checked_offsets():
    a = torch.rand(3, 5, 7) + 1  # +1: no pixel is 0, so the padding is told apart
    b = torch.rand(3, 2, 4) + 1
    c = torch.rand(3, 4, 2) + 1
    items = [{"image": x, "noisy": x + 1, "index": i, "label": 7} for i, x in enumerate((a, b, c))]
    batch = PadCenter()(items)
    assert batch["image"].shape == (3, 3, 5, 7)
    assert torch.equal(batch["size"], torch.tensor([[5, 7], [2, 4], [4, 2]]))
    assert torch.equal(batch["index"], torch.tensor([0, 1, 2]))
    # b: 5-2=3 rows → top 1, bottom 2; 7-4=3 columns → left 1, right 2 (odd pixel right/bottom)
    # c: 5-4=1 row → top 0, bottom 1; 7-2=5 columns → left 2, right 3
    for k, (x, top, left) in enumerate(((a, 0, 0), (b, 1, 1), (c, 0, 2))):
        h, w = x.shape[-2:]
        assert center_offsets(h, w, 5, 7) == (top, left)
        assert torch.equal(batch["image"][k, :, top : top + h, left : left + w], x)
        assert torch.equal(batch["noisy"][k, :, top : top + h, left : left + w], x + 1)
        mask = torch.ones(5, 7, dtype=torch.bool)
        mask[top : top + h, left : left + w] = False
        assert (batch["image"][k][:, mask] == 0).all() and (batch["noisy"][k][:, mask] == 0).all()
        assert torch.equal(crop_center(batch["image"], batch["size"])[k][0], x)


def test_pad_center_refuses_an_item_whose_images_differ_in_size():
    item = {"image": torch.rand(3, 4, 4), "reference": torch.rand(3, 5, 4), "index": 0}
    with pytest.raises(ValueError, match="different sizes"):
        PadCenter()([item])


def test_psnr_of_a_padded_batch_counts_each_images_own_region_only():
    x = torch.rand(2, 3, 6, 8)
    y = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    sizes = torch.tensor([[6, 8], [3, 5]])
    # image 1 is 3x5 at (top 1, left 1); garbage around it must not count
    y[1, :, 0] = 1 - x[1, :, 0]
    mse = ((y[1, :, 1:4, 1:6] - x[1, :, 1:4, 1:6]) ** 2).double().mean()
    expected = 10 * torch.log10(1 / mse)
    values = psnr(y, x, sizes)
    assert values[1].item() == pytest.approx(expected.item(), abs=1e-4)
    assert values[0].item() == pytest.approx(psnr(y[:1], x[:1]).item(), abs=1e-6)


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_unknown_task_cell_on_pre_noised_native_size_pairs(tmp_path):
    root = tmp_path / "pairs"
    sizes = [(40, 32), (29, 45), (36, 36)]
    for i, size in enumerate(sizes, start=1):
        write_image(root / "origin" / f"{i}.png", seed=i, size=size)
        write_image(root / "target" / f"{i}.png", seed=10 + i, size=size)
    noisy = tmp_path / "pairs-noisy-25"
    make_noisy(root, noisy, sigma=25)
    run_dir = tmp_path / "run"
    run_miga(
        f"hydra.run.dir={run_dir}",
        "dataset=paired",
        f"dataset.root={root}",
        "dataset.size=null",
        f"dataset.noisy_root={noisy}",
        "noise=from_disk",
        "loader=pad_center",
        "loader.batch_size=2",
        "metrics=paired",
        "mi_estimator=mine",
        *UNKNOWN_TASK_ATTACK,
        "logger=none",
    )
    rows = read_rows(run_dir / "samples.csv")
    assert sorted(int(row["id"]) for row in rows) == [0, 1, 2]
    for row in rows:
        i = int(row["id"]) + 1
        x = pixels(root / "origin" / f"{i}.png").astype(np.float64) / 255
        x_n = pixels(noisy / "origin" / f"{i}.png").astype(np.float64) / 255
        expected = 10 * np.log10(1 / np.mean((x_n - x) ** 2))  # the file's own x_n, unpadded
        assert float(row["psnr_noisy"]) == pytest.approx(expected, abs=1e-3)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n_images"] == 3
    for i, (w, h) in enumerate(sizes):  # grids are cut back: six panels of the image's own size
        grid = Image.open(run_dir / "grids" / f"{i:06d}.png")
        assert grid.size == (6 * w, h + CAPTION_PX)
