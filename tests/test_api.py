"""The Python API and `python -m miga.run` give the same rows on the demo (issue 30); the
README's example is the code that runs here."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest
import torch

from miga.callbacks.results_writer import read_rows
from tests.helpers import run_miga

REPO = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The README's Python block under "Install and the three ways in"."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Install and the three ways in", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_readme_api_example_gives_the_cli_rows(tmp_path: Path) -> None:
    code = readme_example()
    assert len(code.strip().splitlines()) <= 10
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # the README's own lines
    out = scope["out"]
    assert out.delta.shape == out.attacked.shape == (6, 3, 64, 64)
    assert out.delta.abs().max() <= 4 / 255 + 1e-6

    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONPATH": str(REPO)}
    run = run_miga(
        "dataset=demo_small", "attack.steps=1", "logger=none", cwd=tmp_path, env=env, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (samples,) = (tmp_path / "outputs").glob("*/*/samples.csv")
    cli = read_rows(samples)
    assert [r["id"] for r in out.rows] == [r["id"] for r in cli]
    for api_row, cli_row in zip(out.rows, cli):
        assert api_row.keys() == cli_row.keys()
        for key, value in cli_row.items():
            got = api_row[key]
            if isinstance(value, str):
                assert got == value, key
            elif math.isnan(value):
                assert math.isnan(got), key
            else:
                assert got == pytest.approx(value, rel=1e-4, abs=1e-5), key


def test_given_noisy_images_are_the_ones_attacked() -> None:
    """`noisy=` replaces the cell's noise draw: x_n comes back as given, and D(x_n) is the
    denoiser applied to it (computed here independently)."""
    from miga.api import attack, compose_cell
    from miga.data.demo_photos import DemoPhotos

    photos = DemoPhotos(size=32, limit=2)
    x = torch.stack([photos[i]["image"] for i in range(2)])
    y = torch.tensor([photos[i]["label"] for i in range(2)])
    x_n = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    denoiser = torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    cfg = compose_cell(["attack.steps=1"])
    out = attack(cfg, x, y, noisy=x_n, denoiser=denoiser)
    torch.testing.assert_close(out.noisy, x_n)
    torch.testing.assert_close(out.denoised, denoiser(x_n))
    torch.testing.assert_close(out.attacked, denoiser(x_n + out.delta))
    assert len(out.rows) == 2 and out.summary["n_images"] == 2
