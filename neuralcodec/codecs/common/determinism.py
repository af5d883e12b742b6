"""What keeps a decoder's probability model bit-identical to the encoder's: snapped means and a CRC32
of the scale indexes (so that a numeric mismatch fails clearly instead of decoding garbage)."""

from __future__ import annotations

import zlib

import numpy as np
import torch

from neuralcodec.entropy import scale_to_index
from neuralcodec.errors import CorruptFileError

MEAN_GRID = 256
"""Means are snapped to multiples of 1/MEAN_GRID before use (deterministic reconstruction)."""


def snap_means(means: torch.Tensor) -> np.ndarray:
    """``means`` (float64, CPU) rounded to the 1/MEAN_GRID grid."""
    return np.round(means.numpy() * MEAN_GRID) / MEAN_GRID


def scale_index_crc(scales: np.ndarray, running: int = 0) -> int:
    """CRC32 of the scale-table indexes: a cheap check that the decoder rebuilt the encoder's model.
    ``running`` continues the CRC of earlier scales (scales coded in parts give the CRC of the whole)."""
    return zlib.crc32(scale_to_index(scales).astype(np.uint8).tobytes(), running)


def check_index_crc(rebuilt: int, expected: object, mask: object = 0xFFFFFFFF) -> None:
    """CorruptFileError unless ``rebuilt``, the CRC32 of the scale indexes a decoder rebuilt, is the encoder's
    (the bits of it in ``mask``: compact files keep 16); ``expected`` and ``mask`` come from the file and are checked."""
    for name, value in (("index_crc", expected), ("index_crc_mask", mask)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF:
            raise CorruptFileError(f"invalid {name} {value!r} in the file header")
    if rebuilt & mask != expected:
        raise CorruptFileError(
            "entropy parameters differ from the encoder's (corrupt file, or a numeric mismatch between machines)"
        )
