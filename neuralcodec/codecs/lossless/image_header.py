"""What a lossless image file's header declares, checked before any model loads or anything is allocated."""

from __future__ import annotations

from neuralcodec.container import Payload
from neuralcodec.errors import CorruptFileError
from neuralcodec.limits import Limits, check_dimensions

MODES = ("L", "LA", "RGB", "RGBA")
"""Pillow modes the codec stores; the mode's length is the number of channels."""
TILE = 1024
"""Side of the square tiles the encoder cuts images into."""
MAX_TILE = 1024
"""Largest tile side a file may declare (a group's canvases hold at least one tile)."""
GROUP_PIXELS = 1 << 20
"""Tiles coded side by side hold about this many pixels (at least one tile)."""


def declared_size(payload: Payload, limits: Limits) -> tuple[int, int, str]:
    """(height, width, mode) of the file; LimitExceededError for sizes over ``limits``, CorruptFileError for
    a malformed header or a stream whose chunks do not add up."""
    meta = payload.metadata
    check_dimensions({"width": meta.get("width"), "height": meta.get("height")}, limits)
    height, width, mode = meta["height"], meta["width"], meta.get("mode")
    if mode not in MODES:
        raise CorruptFileError(f"the file's image mode {mode!r} is not one of {', '.join(MODES)}")
    chunk, chunks, tile = meta.get("chunk"), meta.get("chunks"), meta.get("tile")
    symbols = height * width * len(mode)
    if not isinstance(tile, int) or isinstance(tile, bool) or not 1 <= tile <= MAX_TILE:
        raise CorruptFileError(f"the file's tile size {tile!r} is not an integer in 1..{MAX_TILE}")
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        raise CorruptFileError(f"the file's chunk size {chunk!r} is not a positive integer")
    if not isinstance(chunks, list) or not 1 <= len(chunks) <= -(-symbols // chunk) or min(chunks) < 1:
        raise CorruptFileError("the file's stream chunks do not fit its image size")
    if "stream" not in payload.sections or sum(chunks) != len(payload.sections["stream"]):
        raise CorruptFileError("the file's stream is missing or its length differs from its chunks' total")
    return height, width, mode


def check_header(payload: Payload, limits: Limits) -> None:
    """See :func:`declared_size` (``Family.check_header``)."""
    declared_size(payload, limits)
