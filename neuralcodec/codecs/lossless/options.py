"""Encode options of the lossless family (what `codec encode` and ``neuralcodec.encode_file`` accept for it)."""

from __future__ import annotations

from dataclasses import dataclass

from neuralcodec.codecs.base import EncodeOptions


@dataclass
class LosslessOptions(EncodeOptions):
    """Options of the lossless circuit codec (none beyond the common ones)."""
