"""Running a convolutional transform tile by tile, so that its memory is bounded by the tile, not the image.

The transforms here are translation-equivariant with a finite receptive field, so a tile computed with a
border of ``halo`` input rows and columns around it (zero padding only where the image ends) has exactly
the values the whole image would give inside the tile. Whether the float64 sums are also bit-identical
depends on the BLAS's blocking; callers that need bit-identity use one tiling on both sides of a codec.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Transform = Callable[[torch.Tensor], torch.Tensor]


def tiled(transform: Transform, x: torch.Tensor, tile: int, halo: int) -> torch.Tensor:
    """``transform(x)`` for ``x`` (1, C, h, w) computed on ``tile`` x ``tile`` input tiles with ``halo``
    rows and columns of context on every side; the output may be larger by an integer factor (upsampling).
    An input no larger than one tile is transformed whole."""
    height, width = x.shape[-2:]
    if height <= tile and width <= tile:
        return transform(x)
    out: torch.Tensor | None = None
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            rows = slice(max(0, top - halo), min(height, top + tile + halo))
            cols = slice(max(0, left - halo), min(width, left + tile + halo))
            part = transform(x[:, :, rows, cols])
            factor = part.shape[-2] // (rows.stop - rows.start)
            if out is None:
                out = part.new_empty(part.shape[:2] + (height * factor, width * factor))
            keep_rows = min(tile, height - top) * factor
            keep_cols = min(tile, width - left) * factor
            out[:, :, top * factor : top * factor + keep_rows, left * factor : left * factor + keep_cols] = part[
                :, :, (top - rows.start) * factor : (top - rows.start) * factor + keep_rows,
                (left - cols.start) * factor : (left - cols.start) * factor + keep_cols]
    assert out is not None
    return out
