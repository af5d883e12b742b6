"""An adaptive filter on the motion-compensated prediction, fitted per frame by the encoder.

A P-frame's prediction is read from a decoded (at low rates, soft) reference; the best sharpening or
smoothing of it depends on the content, the motion and the rate. The encoder fits a 3x3 kernel, shared
by the three colour planes, to the frame by least squares and codes it; the decoder filters the
prediction with it before adding the residual. Taps are integers in units of 1/``UNIT`` that sum to
``UNIT`` (the centre tap is implied), applied with integer arithmetic and one rounding, edges
replicated: encoder and decoder predictions are identical on any machine.

Coding: the eight outer taps, each a discretized Laplace around 0 with scale ``TAP_SCALE``, after the
motion field in the P-frame's stream (a few bytes a frame).

Measured (``benchmarks/video_mc_tools.py --tools prediction``): -2.1% / -6.5% / -3.7% BD-rate on the
Vimeo, synthetic-motion and moving-object training clips. Exploratory variants, not kept: a 5x5 diamond
(12 taps) about the same (-3.8% on the moving objects), one kernel per activity class (two classes)
-1.6% / -5.5% / -3.3%, one kernel for blocks with a zero vector and one for the others -1.5% / -5.8% /
-2.5%: the second kernel's taps cost more than it saves.
"""

from __future__ import annotations

import numpy as np

from neuralcodec.entropy import SymbolDecoder, SymbolEncoder
from neuralcodec.errors import CorruptFileError

UNIT_BITS = 6
UNIT = 1 << UNIT_BITS
"""Taps are in units of 1/UNIT."""
OFFSETS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
"""The kernel's taps: (row, column) offsets in raster order."""
_CENTRE = OFFSETS.index((0, 0))
_OUTER = [i for i in range(len(OFFSETS)) if i != _CENTRE]
MAX_TAP = 2 * UNIT
"""Largest magnitude of an outer tap a decoder accepts (the encoder clips to it)."""
TAP_SCALE = 4.0
"""Laplace scale of an outer tap, in units of 1/UNIT."""


def identity_filter() -> np.ndarray:
    """The taps that leave a prediction unchanged."""
    taps = np.zeros(len(OFFSETS), dtype=np.int64)
    taps[_CENTRE] = UNIT
    return taps


def _shifted(image: np.ndarray) -> np.ndarray:
    """(H, W, C, taps) int64: ``image`` at each kernel offset, edges replicated."""
    height, width = image.shape[:2]
    padded = np.pad(image.astype(np.int64), ((1, 1), (1, 1), (0, 0)), mode="edge")
    return np.stack([padded[1 + dy:1 + dy + height, 1 + dx:1 + dx + width] for dy, dx in OFFSETS], axis=-1)


def fit_filter(prediction: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """The taps (len(OFFSETS),) int64 that bring ``prediction`` closest to ``frame`` (both (H, W, 3) uint8) in
    squared error, by least squares with the taps' sum fixed to one, then rounded to 1/UNIT."""
    shifted = _shifted(prediction).reshape(-1, len(OFFSETS)).astype(np.float64)
    centre = shifted[:, _CENTRE]
    # with the sum fixed, the frame minus the centre is fitted by the outer taps on (neighbour - centre)
    differences = shifted[:, _OUTER] - centre[:, None]
    outer, *_ = np.linalg.lstsq(differences, frame.reshape(-1).astype(np.float64) - centre, rcond=None)
    taps = identity_filter()
    taps[_OUTER] = np.clip(np.rint(outer * UNIT), -MAX_TAP, MAX_TAP).astype(np.int64)
    taps[_CENTRE] = UNIT - taps[_OUTER].sum()
    return taps


def apply_filter(prediction: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """``prediction`` (H, W, C) uint8 filtered with ``taps``, exactly (integer arithmetic)."""
    total = _shifted(prediction) @ taps.astype(np.int64)
    return np.clip((total + (UNIT >> 1)) >> UNIT_BITS, 0, 255).astype(np.uint8)


def encode_filter(taps: np.ndarray, encoder: SymbolEncoder) -> None:
    """Push the outer taps of ``taps`` to ``encoder``."""
    outer = taps[_OUTER].astype(np.int64)
    encoder.encode_laplace(outer, np.zeros(len(outer)), np.full(len(outer), TAP_SCALE))


def decode_filter(decoder: SymbolDecoder) -> np.ndarray:
    """Inverse of :func:`encode_filter`; CorruptFileError for taps no encoder writes."""
    outer = decoder.decode_laplace(np.zeros(len(_OUTER)), np.full(len(_OUTER), TAP_SCALE)).astype(np.int64)
    if np.abs(outer).max() > MAX_TAP:
        raise CorruptFileError(f"a prediction filter tap exceeds ±{MAX_TAP}/{UNIT}")
    taps = identity_filter()
    taps[_OUTER] = outer
    taps[_CENTRE] = UNIT - outer.sum()
    return taps
