"""report.html in a real browser: headless Chromium renders a real sweep's page offline.

The sweep is real (4 demo cells through `python -m miga.run -m`); one cell is then broken
(its summary removed: failed/incomplete) and one removed (missing). Chromium dumps the DOM
(the numbers are compared with each cell's summary.json) and takes a screenshot (not blank),
inside a network namespace with no interfaces, so the page provably needs no network.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from miga.report import main as report_main
from tests.helpers import run_miga

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "headless browser test: install chromium (OS package; `make install` does as root)",
        allow_module_level=True,
    )


def _offline_prefix() -> list[str]:
    """`unshare -n` (no network at all) where this user may create namespaces (root here)."""
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    return ["unshare", "-n"] if probe.returncode == 0 else []


def chromium(*args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        # belt and braces where no namespace could be made: no resolver, a dead proxy
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=http://127.0.0.1:9",
    ]
    return subprocess.run(
        [*_offline_prefix(), CHROMIUM, *flags, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


class Dom(HTMLParser):
    """The parts of the page the tests read: cells' rows, their cells, every resource URL."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.headline: dict[str, dict[str, str]] = {}
        self.details: list[str] = []
        self._row: str | None = None
        self._metric: str | None = None
        self._in_headline = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        self.urls += [a[k] for k in ("src", "href") if k in a]
        if tag == "table":
            self._in_headline = a.get("id") == "headline"
        if tag == "tr" and self._in_headline and "data-path" in a:
            self._row = a["data-path"]
            self.headline[self._row] = {}
        if tag == "td" and self._row and "data-metric" in a:
            self._metric = a["data-metric"]
        if tag == "section" and "cell-detail" in a.get("class", ""):
            self.details.append(a["data-path"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._metric = None
        if tag == "table":
            self._in_headline = False
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row and self._metric:
            self.headline[self._row][self._metric] = (
                self.headline[self._row].get(self._metric, "") + data
            ).strip()


def expected_text(summary: dict, key: str) -> str:
    """The page's number, computed here from summary.json: value [lo, hi] at 3 decimals."""
    value = summary[key]
    fmt = (lambda v: f"{v:.3f}") if abs(value) < 10 else (lambda v: f"{v:.2f}")
    ci = summary.get(f"{key}_ci95")
    return fmt(value) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict:
    sweep = tmp_path_factory.mktemp("html") / "sweep"
    run_miga(
        "-m",
        "experiment=demo_grid",
        "attack.steps=2",
        "dataset.limit=4",
        "logger=none",
        f"hydra.sweep.dir={sweep}",
        check=True,
        timeout=900,
    )
    cells = sorted(p.parent for p in sweep.rglob("provenance.json"))
    assert len(cells) == 4
    (cells[1] / "summary.json").unlink()  # a cell that failed mid-way
    never_started = json.loads((cells[2] / "provenance.json").read_text())["choices"]
    shutil.rmtree(cells[2])  # a cell that never started
    out = sweep / "report"
    assert report_main([str(sweep), "--out", str(out)]) == 1  # 1: the sweep is incomplete
    page = out / "report.html"
    dom = chromium("--dump-dom", page.as_uri()).stdout
    shot = out / "report.png"
    chromium(f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri())
    parsed = Dom()
    parsed.feed(dom)
    return {
        "cells": cells,
        "never_started": never_started,
        "dom": dom,
        "parsed": parsed,
        "shot": shot,
        "page": page,
    }


def test_every_cell_is_on_the_page_with_the_numbers_of_its_summary(rendered: dict) -> None:
    finished, failed, missing, other = rendered["cells"]
    parsed: Dom = rendered["parsed"]
    assert sorted(parsed.headline) == sorted(str(c) for c in (finished, failed, other))
    assert sorted(parsed.details) == sorted(parsed.headline)
    for cell in (finished, other):
        summary = json.loads((cell / "summary.json").read_text())
        shown = parsed.headline[str(cell)]
        for key in ("acc_denoised", "acc_attacked", "success_rate", "psnr_attacked"):
            assert shown[key] == expected_text(summary, key), (cell, key)
        assert "[" in shown["success_rate"]  # the interval is there
    assert set(parsed.headline[str(failed)].values()) == {"—"}
    assert "2 finished cells, 1 failed or incomplete, 1 missing." in rendered["dom"]
    assert f"failed/incomplete: <code>{failed}</code>" in rendered["dom"]
    choices = rendered["never_started"]
    label = f"denoiser={choices['denoiser']}, dataset={choices['dataset']}"
    assert f"missing (never started): {label}" in rendered["dom"]
    assert str(missing) not in rendered["dom"]


def test_the_page_shows_grids_heatmaps_and_provenance(rendered: dict) -> None:
    dom = rendered["dom"]
    assert dom.count('class="grid"') == 3 * 4  # 3 cells on disk × 4 images each
    assert 'id="example"' in dom  # the paper's effect on the first screen
    assert 'class="heatmap"' in dom
    provenance = json.loads((rendered["cells"][0] / "provenance.json").read_text())
    assert provenance["config_hash"] in dom and provenance["git_commit"] in dom


def test_the_page_needs_no_network(rendered: dict) -> None:
    urls = rendered["parsed"].urls
    assert urls and all(u.startswith("data:image/png;base64,") for u in urls), [
        u[:40] for u in urls if not u.startswith("data:")
    ]


def test_the_screenshot_is_not_blank(rendered: dict) -> None:
    pixels = np.asarray(Image.open(rendered["shot"]).convert("RGB"), dtype=np.float32)
    assert pixels.shape[:2] == (1600, 1280)
    coloured = (pixels.max(axis=2) - pixels.min(axis=2)) > 40  # photos, heat-maps: not grey
    dark = pixels.mean(axis=2) < 100  # text
    assert coloured.mean() > 0.02 and dark.mean() > 0.002
