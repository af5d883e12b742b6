"""The adaptive prediction filter of video-mc P-frames: fitting, exact integer filtering, coding."""

from __future__ import annotations

import numpy as np
import pytest

from neuralcodec.codecs.video.prediction_filter import (
    MAX_TAP, UNIT, apply_filter, decode_filter, encode_filter, fit_filter, identity_filter,
)
from neuralcodec.entropy import SymbolDecoder, SymbolEncoder
from neuralcodec.errors import CorruptFileError


def _box_blurred(image: np.ndarray) -> np.ndarray:
    padded = np.pad(image.astype(np.float64), ((1, 1), (1, 1), (0, 0)), mode="edge")
    height, width = image.shape[:2]
    total = sum(padded[dy:dy + height, dx:dx + width] for dy in range(3) for dx in range(3))
    return np.clip(np.rint(total / 9), 0, 255).astype(np.uint8)


def test_fitted_filter_finds_the_blur_between_prediction_and_frame():
    prediction = np.random.default_rng(0).integers(0, 256, (40, 50, 3)).astype(np.uint8)
    frame = _box_blurred(prediction)
    taps = fit_filter(prediction, frame)
    assert taps.sum() == UNIT and np.abs(taps - round(UNIT / 9)).max() <= 1  # nine taps of about 1/9
    error = np.abs(apply_filter(prediction, taps).astype(int) - frame).mean()
    assert error < 1.5 < np.abs(prediction.astype(int) - frame).mean() / 20


def test_filtering_is_exact_integer_arithmetic():
    image = np.random.default_rng(1).integers(0, 256, (9, 11, 3)).astype(np.uint8)
    assert np.array_equal(apply_filter(image, identity_filter()), image)
    taps = identity_filter()
    taps[1], taps[4] = 16, UNIT - 16  # a quarter of the pixel above (the edge row replicated)
    got = apply_filter(image, taps).astype(int)
    above = np.concatenate([image[:1], image[:-1]]).astype(int)
    assert np.array_equal(got, (16 * above + (UNIT - 16) * image.astype(int) + UNIT // 2) // UNIT)


def test_taps_round_trip_and_hostile_taps_are_refused():
    taps = fit_filter(*(np.random.default_rng(s).integers(0, 256, (16, 16, 3)).astype(np.uint8) for s in (2, 3)))
    encoder = SymbolEncoder()
    encode_filter(taps, encoder)
    assert np.array_equal(decode_filter(SymbolDecoder(encoder.finish())), taps)
    bad = SymbolEncoder()
    bad.encode_laplace(np.full(8, MAX_TAP + 1), np.zeros(8), np.full(8, 4.0))
    with pytest.raises(CorruptFileError, match="prediction filter"):
        decode_filter(SymbolDecoder(bad.finish()))
