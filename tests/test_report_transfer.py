"""Transfer matrices from hand-made cells: rows attacked through, columns scored by."""

from __future__ import annotations

from pathlib import Path

from miga.report import Cell, write_report
from miga.report.sections.transfer import attacked_through

SURROGATE = "denoiser@surrogate.denoiser"


def _cell(tmp: Path, victim: str, surrogate: str | None, success: float) -> Cell:
    choices = {"denoiser": victim, "dataset": "demo", "attack": "miga", SURROGATE: str(surrogate)}
    summary = {"n_images": 10, "success_rate": success, "psnr_attacked": 20 + success}
    return Cell(tmp / f"{victim}-{surrogate}", choices, summary, rows_done=10)


def test_the_matrix_puts_each_cell_at_attacked_through_by_scored_by(tmp_path: Path) -> None:
    success = {("a", "a"): 1.0, ("a", "b"): 0.25, ("b", "a"): 0.5, ("b", "b"): 0.75}
    # the white-box cells come both ways: no surrogate, and the victim's own as surrogate
    cells = [
        _cell(tmp_path, victim, None if through == victim and victim == "a" else through, value)
        for (through, victim), value in success.items()
    ]
    assert [attacked_through(c, "denoiser", SURROGATE) for c in cells] == ["a", "a", "b", "b"]
    report = write_report(cells, [], tmp_path / "report").read_text()
    section = report[report.index("## Transfer of denoisers") :]
    assert "| success_rate | a | b |" in section
    assert "| a | 1.000 | 0.250 |" in section  # attacked through a: white-box 1.0, on b 0.25
    assert "| b | 0.500 | 0.750 |" in section
    assert "| a | 21.00 | 20.25 |" in section  # psnr_attacked, same layout
    pngs = sorted(p.name for p in (tmp_path / "report").glob("transfer_*.png"))
    assert pngs == [
        "transfer_psnr_attacked__denoiser_all.png",
        "transfer_success_rate__denoiser_all.png",
    ]


def test_a_white_box_sweep_has_no_transfer_section(tmp_path: Path) -> None:
    cells = [_cell(tmp_path, "a", None, 1.0), _cell(tmp_path, "b", None, 0.5)]
    report = write_report(cells, [], tmp_path / "report").read_text()
    assert "Transfer" not in report
    assert "denoiser@surrogate" not in report  # nor do the tables' titles mention it
