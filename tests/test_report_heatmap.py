"""Heat-map colour scales: rates on a fixed [0, 1], a constant field not on a ±0.1 scale."""

from miga.report.figures import colour_range, heatmap


def test_rates_use_fixed_unit_range() -> None:
    assert colour_range("success_rate", [0.4, 0.6]) == (0.0, 1.0)


def test_constant_field_scale_is_relative_to_value() -> None:
    low, high = colour_range("psnr_attacked", [30.0, 30.0])
    assert (low, high) == (28.5, 31.5)


def test_heatmap_writes_png(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "h.png"
    heatmap(
        path,
        "denoiser=demo, attack=miga",
        ["a"],
        ["x", "y"],
        {("a", "x"): 0.5},
        metric="success_rate",
    )
    assert path.read_bytes()[:4] == b"\x89PNG"
