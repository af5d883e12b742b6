"""Metrics, Bjøntegaard deltas, classical codec adapters and RD plots (neuralcodec.eval)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuralcodec.errors import InputError
from neuralcodec.eval.bdrate import bd_psnr, bd_rate
from neuralcodec.eval.classical import CLASSICAL_CODECS, get_classical
from neuralcodec.metrics import bits_per_pixel, ms_ssim, ms_ssim_db, psnr, psnr_y, snr_db
from neuralcodec.eval.plots import plot_rd_curves

RD_CURVE = [(0.1, 28.0), (0.25, 31.2), (0.5, 34.1), (1.0, 37.0), (2.0, 39.6)]


def _random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, size=(height, width, 3), dtype=np.uint8)


def _synthetic_photo(size: int = 64) -> np.ndarray:
    """Smooth colour gradients, an edge and mild texture: compressible like a small photo."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    red = 128 + 90 * np.sin(x / 9.0) * np.cos(y / 13.0)
    green = 40 + 3 * x + 0.5 * y
    blue = np.where(x + y > size, 200.0, 60.0)
    texture = np.random.default_rng(1).normal(0, 6, size=(size, size, 3))
    return np.clip(np.stack([red, green, blue], axis=-1) + texture, 0, 255).astype(np.uint8)


# --- PSNR -------------------------------------------------------------------------------------


def test_psnr_of_unit_error_on_255_peak_is_48_13_db() -> None:
    x = _random_image(16, 16).clip(0, 254)
    assert psnr(x, x + 1) == pytest.approx(20 * math.log10(255), abs=1e-9)
    assert psnr(x, x + 1) == pytest.approx(48.13, abs=0.005)


def test_psnr_identical_is_inf() -> None:
    x = _random_image(8, 8)
    assert psnr(x, x) == math.inf
    assert psnr_y(x, x) == math.inf


def test_psnr_float_tensors_default_to_peak_one() -> None:
    x = torch.full((1, 3, 8, 8), 0.5)
    assert psnr(x, x + 0.1) == pytest.approx(20.0, abs=1e-5)
    assert psnr(x, x + 0.1, peak=2.0) == pytest.approx(20.0 + 20 * math.log10(2.0), abs=1e-5)


def test_psnr_y_weights_channels_by_bt601_luma() -> None:
    x = _random_image(8, 8).clip(0, 254)
    luma_step = (65.481 + 128.553 + 24.966) / 255
    assert psnr_y(x, x + 1) == pytest.approx(20 * math.log10(255 / luma_step), abs=1e-9)
    blue_only = x.copy()
    blue_only[..., 2] += 1
    assert psnr_y(x, blue_only) == pytest.approx(20 * math.log10(255 / (24.966 / 255)), abs=1e-9)


def test_psnr_y_reads_tensors_channels_first() -> None:
    x, y = _random_image(8, 12, seed=1), _random_image(8, 12, seed=2)
    as_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1).float() / 255  # noqa: E731
    assert psnr_y(as_tensor(x), as_tensor(y)) == pytest.approx(psnr_y(x, y), abs=1e-4)


@pytest.mark.parametrize(
    ("x", "y", "peak"),
    [
        (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8), None),
        (np.zeros((4, 4, 3), np.uint8), torch.zeros(4, 4, 3), None),
        (np.zeros((4, 4, 3), np.uint16), np.zeros((4, 4, 3), np.uint16), None),
        (np.zeros((0, 4, 3), np.uint8), np.zeros((0, 4, 3), np.uint8), None),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.uint8), 0.0),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.float32), None),
        ([[1, 2]], [[1, 2]], None),
    ],
)
def test_psnr_rejects_bad_input(x: object, y: object, peak: float | None) -> None:
    with pytest.raises(InputError):
        psnr(x, y, peak=peak)  # type: ignore[arg-type]


def test_psnr_y_needs_three_channels() -> None:
    with pytest.raises(InputError, match="3 channels"):
        psnr_y(np.zeros((4, 4), np.uint8), np.ones((4, 4), np.uint8))


# --- MS-SSIM ----------------------------------------------------------------------------------


def test_ms_ssim_identical_is_one_and_distortion_lowers_it() -> None:
    x = _random_image(176, 176)
    assert ms_ssim(x, x) == pytest.approx(1.0, abs=1e-9)
    noisy = np.clip(x.astype(np.int16) + 20, 0, 255).astype(np.uint8)
    assert ms_ssim(x, noisy) < 0.999


def test_ms_ssim_accepts_float_tensors() -> None:
    x = torch.rand(1, 3, 161, 170, generator=torch.Generator().manual_seed(0))
    assert ms_ssim(x, x) == pytest.approx(1.0, abs=1e-9)
    assert ms_ssim(x.bfloat16(), x.bfloat16()) == pytest.approx(1.0, abs=1e-9)


def test_ms_ssim_rejects_images_below_161_px() -> None:
    x = _random_image(160, 300)
    with pytest.raises(InputError, match="161"):
        ms_ssim(x, x)


def test_ms_ssim_in_db_is_minus_ten_log10_of_one_minus_ms_ssim() -> None:
    assert ms_ssim_db(0.9) == pytest.approx(10.0)
    assert ms_ssim_db(0.99) == pytest.approx(20.0)
    assert ms_ssim_db(0.999) == pytest.approx(30.0)
    assert ms_ssim_db(1.0) == math.inf


def test_ssim_and_ms_ssim_run_in_float32_within_1e5_of_float64(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytorch_msssim

    import neuralcodec.metrics as metrics

    x = _random_image(192, 256)
    blurred = ((x.astype(np.float64) + np.roll(x, 1, axis=0) + np.roll(x, 1, axis=1)) / 3).round().astype(np.uint8)
    as64 = [torch.from_numpy(a).permute(2, 0, 1)[None].double() for a in (x, blurred)]
    assert metrics.ssim(x, blurred) == pytest.approx(float(pytorch_msssim.ssim(*as64, data_range=255.0)), abs=1e-5)
    assert metrics.ms_ssim(x, blurred) == pytest.approx(float(pytorch_msssim.ms_ssim(*as64, data_range=255.0)), abs=1e-5)
    seen = []
    monkeypatch.setattr(metrics, "_pytorch_ssim", lambda a, b, data_range: seen.append(a.dtype) or torch.ones(()))
    metrics.ssim(x, blurred)
    assert seen == [torch.float32]


# --- rate and audio ---------------------------------------------------------------------------


def test_bits_per_pixel() -> None:
    assert bits_per_pixel(1000, 100, 80) == pytest.approx(1.0)
    assert bits_per_pixel(0, 10, 10) == 0.0
    with pytest.raises(InputError):
        bits_per_pixel(10, 0, 10)
    with pytest.raises(InputError):
        bits_per_pixel(-1, 10, 10)


def test_snr_db() -> None:
    reference = np.sin(np.linspace(0, 40, 16000))
    assert snr_db(reference, 1.1 * reference) == pytest.approx(20.0, abs=1e-9)
    assert snr_db(reference, reference) == math.inf
    assert snr_db(np.zeros(8), np.ones(8)) == -math.inf
    tensor = torch.from_numpy(reference)
    assert snr_db(tensor, 0.9 * tensor) == pytest.approx(20.0, abs=1e-9)
    with pytest.raises(InputError):
        snr_db(reference, reference[:-1])


# --- Bjøntegaard deltas -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["cubic", "pchip"])
def test_bd_of_a_curve_against_itself_is_zero(method: str) -> None:
    assert bd_rate(RD_CURVE, RD_CURVE, method=method) == pytest.approx(0.0, abs=1e-9)
    assert bd_psnr(RD_CURVE, RD_CURVE, method=method) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("method", ["cubic", "pchip"])
def test_bd_rate_of_halved_rates_is_minus_50_percent(method: str) -> None:
    halved = [(rate / 2, quality) for rate, quality in RD_CURVE]
    assert bd_rate(RD_CURVE, halved, method=method) == pytest.approx(-50.0, abs=1e-6)
    assert bd_rate(halved, RD_CURVE, method=method) == pytest.approx(100.0, abs=1e-6)


@pytest.mark.parametrize("method", ["cubic", "pchip"])
def test_bd_psnr_of_plus_1_db_curve_is_plus_1(method: str) -> None:
    better = [(rate, quality + 1.0) for rate, quality in RD_CURVE]
    assert bd_psnr(RD_CURVE, better, method=method) == pytest.approx(1.0, abs=1e-9)
    assert bd_rate(RD_CURVE, better, method=method) < 0


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(0.2, 5.0), method=st.sampled_from(["cubic", "pchip"]))
def test_bd_rate_of_scaled_rates_is_the_scale(scale: float, method: str) -> None:
    scaled = [(rate * scale, quality) for rate, quality in RD_CURVE]
    assert bd_rate(RD_CURVE, scaled, method=method) == pytest.approx((scale - 1) * 100, abs=1e-6)


def test_bd_input_order_does_not_matter() -> None:
    shuffled = [RD_CURVE[i] for i in (3, 0, 4, 2, 1)]
    assert bd_rate(RD_CURVE, shuffled) == pytest.approx(0.0, abs=1e-9)


def test_bd_point_counts() -> None:
    three = RD_CURVE[:3]
    with pytest.raises(InputError, match=">= 4"):
        bd_rate(three, three, method="cubic")
    assert bd_rate(three, three, method="pchip") == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(InputError, match=">= 2"):
        bd_psnr(RD_CURVE[:1], RD_CURVE, method="pchip")


@pytest.mark.parametrize(
    "bad",
    [
        [(0.1, 30.0), (0.2, 29.0), (0.4, 33.0), (0.8, 36.0)],  # quality drops as rate rises
        [(0.1, 30.0), (0.1, 31.0), (0.4, 33.0), (0.8, 36.0)],  # repeated rate
        [(0.0, 30.0), (0.2, 31.0), (0.4, 33.0), (0.8, 36.0)],  # rate not positive
        [(0.1, 30.0), (0.2, math.nan), (0.4, 33.0), (0.8, 36.0)],  # not finite
    ],
)
def test_bd_rejects_invalid_curves(bad: list[tuple[float, float]]) -> None:
    with pytest.raises(InputError):
        bd_rate(RD_CURVE, bad)


def test_bd_rejects_curves_that_do_not_overlap() -> None:
    far = [(rate * 100, quality + 50) for rate, quality in RD_CURVE]
    with pytest.raises(InputError, match="overlap"):
        bd_rate(RD_CURVE, far)
    with pytest.raises(InputError, match="overlap"):
        bd_psnr(RD_CURVE, far)


def test_bd_rejects_unknown_method() -> None:
    with pytest.raises(InputError, match="method"):
        bd_rate(RD_CURVE, RD_CURVE, method="linear")  # type: ignore[arg-type]


# --- classical codecs -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CLASSICAL_CODECS))
def test_classical_codec_round_trip(name: str) -> None:
    codec = get_classical(name)
    if not codec.available():
        pytest.skip(codec.unavailable_reason())
    image = _synthetic_photo()
    low, high = codec.qualities[0], codec.qualities[-1]
    low_bytes, high_bytes = codec.encode(image, low), codec.encode(image, high)
    low_image, high_image = codec.decode(low_bytes), codec.decode(high_bytes)
    assert low_image.shape == high_image.shape == image.shape
    assert low_image.dtype == high_image.dtype == np.uint8
    assert len(low_bytes) < image.nbytes
    assert len(high_bytes) > len(low_bytes)
    assert psnr(image, high_image) > psnr(image, low_image)


@pytest.mark.parametrize("name", sorted(CLASSICAL_CODECS))
def test_classical_qualities_are_an_increasing_sweep_in_range(name: str) -> None:
    codec = get_classical(name)
    assert 8 <= len(codec.qualities) <= 12
    assert list(codec.qualities) == sorted(set(codec.qualities))
    assert codec.knob_range[0] <= codec.qualities[0] and codec.qualities[-1] <= codec.knob_range[1]


def test_classical_rejects_bad_input() -> None:
    jpeg = get_classical("jpeg")
    with pytest.raises(InputError):
        jpeg.encode(np.zeros((8, 8, 3), np.float32), 50)
    with pytest.raises(InputError):
        jpeg.encode(np.zeros((8, 8, 4), np.uint8), 50)
    with pytest.raises(InputError, match="quality"):
        jpeg.encode(np.zeros((8, 8, 3), np.uint8), 500)
    with pytest.raises(InputError):
        jpeg.decode(b"definitely not a jpeg")


def test_get_classical_unknown_name_lists_known_ones() -> None:
    with pytest.raises(InputError, match="jpeg2000"):
        get_classical("bpg")


# --- plots ------------------------------------------------------------------------------------


def test_plot_rd_curves_writes_a_png(tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "plots" / "rd.png"
    curves = {"anchor": RD_CURVE, "test": [(r * 0.8, q) for r, q in RD_CURVE]}
    assert plot_rd_curves(curves, target, title="test") == target
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in target.parent.iterdir()] == ["rd.png"]
    with pytest.raises(InputError):
        plot_rd_curves({}, target)


def test_rd_plots_keep_a_dozen_curves_apart() -> None:
    from neuralcodec.eval.plots import _draw

    # a Kodak plot has 12 series; matplotlib's colour cycle has 10
    curves = {f"codec {i}": [(r * (1 + i / 20), q) for r, q in RD_CURVE] for i in range(12)}
    lines = _draw(curves, "bpp", "PSNR", "test").axes[0].get_lines()
    looks = {(line.get_color(), line.get_linestyle(), line.get_marker()) for line in lines}
    assert len(lines) == len(looks) == 12


def test_rate_at_quality_interpolates_in_log_rate_on_the_best_so_far_curve() -> None:
    from neuralcodec.eval.bdrate import rate_at_quality

    # the 0.4 bpp point (0.9) is worse than the 0.2 bpp one (0.95): target 0.9 lies between 0.1 and 0.2
    # bpp, at fraction (0.9 - 0.5) / (0.95 - 0.5) = 8/9 of the log-rate interval: 0.1 * 2 ** (8/9)
    assert rate_at_quality([(0.1, 0.5), (0.4, 0.9), (0.2, 0.95), (1, 1)], 0.9) == pytest.approx(0.1 * 2 ** (8 / 9))
    assert rate_at_quality([(0.1, 0.5), (0.4, 1.0)], 0.75) == pytest.approx(0.2)  # geometric mean
    assert rate_at_quality([(0.1, 0.95)], 0.9) == 0.1
    assert rate_at_quality([(0.1, 0.5), (0.3, 0.6)], 0.7) is None
    with pytest.raises(InputError):
        rate_at_quality([(0.0, 0.5)], 0.4)
