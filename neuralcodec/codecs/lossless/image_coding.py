"""Coding planes along the wavefront with a circuit, into a stream cut in chunks (bounded memory).

The tiles of a group are coded side by side: every step of the wavefront (``planes.scan``, in every tile
at once) is one batch for ``coding.code_pixels``: the pixels of the step get their predictions and
context classes from the canvas, the circuit gives the exact conditional pmf of each residual (as
running sums, from one integer product: the coder needs no cumsum), and the decoded values go back on
the canvas for the next steps.
Encoder and decoder run this same function; only the ``ChunkCoder`` differs.

The encoder keeps its coding operations (one pmf row per symbol) until a stream is finished, so the
stream is cut into chunks: after the step at which a chunk reaches ``chunk_symbols`` symbols, the chunk
is finished and a new one begins. The decoder follows the same rule, so only the chunks' byte lengths
are stored; memory stays bounded whatever the image size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from neuralcodec.codecs.lossless.coding import CodingTables, code_pixels
from neuralcodec.codecs.lossless.planes import LEFT, TOP, ContextScheme, Pixels, predict, reconstructed, residuals, scan
from neuralcodec.codecs.lossless.planes import store
from neuralcodec.entropy import SymbolDecoder, SymbolEncoder
from neuralcodec.errors import CorruptFileError

CHUNK_SYMBOLS = 1 << 15
"""Symbols per stream chunk (at least; a chunk ends with a wavefront step)."""


class ChunkCoder(Protocol):
    def code(self, cdf: np.ndarray, rows: np.ndarray, known: np.ndarray) -> np.ndarray:
        """Encode ``known`` (and return it) or decode (``known`` is ignored); symbol ``i`` has the pmf whose
        running sums are row ``rows[i]`` of ``cdf``."""

    def step_done(self) -> None:
        """A wavefront step is finished (a chunk may end here)."""


class ChunkEncoder:
    """Encodes symbols into streams of about ``chunk_symbols`` symbols each."""

    def __init__(self, chunk_symbols: int = CHUNK_SYMBOLS) -> None:
        self.chunk_symbols = chunk_symbols
        self.chunks: list[bytes] = []
        self.ideal_bits = 0.0
        self._encoder = SymbolEncoder()
        self._count = 0

    def code(self, cdf: np.ndarray, rows: np.ndarray, known: np.ndarray) -> np.ndarray:
        self._encoder.encode_categorical(known, cdf, rows, cumulative=True)
        self._count += len(known)
        return known

    def step_done(self) -> None:
        if self._count >= self.chunk_symbols:
            self._finish_chunk()

    def finish(self) -> list[bytes]:
        """The chunks' streams (the last one finished here)."""
        if self._count:
            self._finish_chunk()
        return self.chunks

    def _finish_chunk(self) -> None:
        self.ideal_bits += self._encoder.ideal_bits
        self.chunks.append(self._encoder.finish())
        self._encoder, self._count = SymbolEncoder(), 0


class ChunkDecoder:
    """Decodes the chunks a :class:`ChunkEncoder` wrote, following the same cutting rule."""

    def __init__(self, chunks: list[bytes], chunk_symbols: int = CHUNK_SYMBOLS) -> None:
        self.chunk_symbols = chunk_symbols
        self._chunks = list(reversed(chunks))
        self._decoder: SymbolDecoder | None = None
        self._count = 0

    def code(self, cdf: np.ndarray, rows: np.ndarray, known: np.ndarray) -> np.ndarray:
        if self._decoder is None:
            if not self._chunks:
                raise CorruptFileError("the file's stream ends before its image does")
            self._decoder, self._count = SymbolDecoder(self._chunks.pop()), 0
        self._count += len(rows)
        return self._decoder.decode_categorical(cdf, rows, cumulative=True)

    def step_done(self) -> None:
        if self._decoder is not None and self._count >= self.chunk_symbols:
            self._close()

    def finish(self) -> None:
        """Check that every chunk was read to its end."""
        if self._decoder is not None:
            self._close()
        if self._chunks:
            raise CorruptFileError(f"the file has {len(self._chunks)} stream chunk(s) more than its image needs")

    def _close(self) -> None:
        assert self._decoder is not None
        self._decoder.assert_exhausted()
        self._decoder = None


def tile_steps(sizes: np.ndarray) -> Iterator[Pixels]:
    """The wavefront over tiles of ``sizes`` (T, 2) (height, width) side by side: step ``t`` holds the pixels
    of every tile with ``2 * row + col == t``, tile by tile."""
    count = len(sizes)
    for rows, cols in scan(int(sizes[:, 0].max()), int(sizes[:, 1].max())):
        tiles = np.repeat(np.arange(count), len(rows))
        rows, cols = np.tile(rows, count), np.tile(cols, count)
        inside = (rows < sizes[tiles, 0]) & (cols < sizes[tiles, 1])
        yield tiles[inside], rows[inside], cols[inside]


def code_planes(tables: CodingTables, scheme: ContextScheme, board: np.ndarray, sizes: np.ndarray,
                coder: ChunkCoder) -> None:
    """Code the planes of the tiles of ``board`` (canvases: filled to encode, empty to decode; decoded
    values are written on them) of ``sizes`` (T, 2) along the wavefront, with the circuit ``tables``
    (variables: context, residual per plane) and the contexts of ``scheme``."""
    for at in tile_steps(sizes):
        tiles, rows, cols = at
        prediction, activity, texture = predict(board, at, scheme)
        planes = len(prediction)
        known = residuals(board[tiles, :planes, rows + TOP, cols + LEFT].T, prediction)
        contexts = scheme.classes(activity, texture)
        values = np.empty_like(prediction)

        def symbols(node: int, cdf: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
            plane, is_residual = divmod(node, 2)
            if not is_residual:
                return contexts[plane]
            assert cdf is not None
            coded = coder.code(cdf, rows, known[plane])
            values[plane] = reconstructed(coded, prediction[plane], values[0] if plane else 0)  # R, B: G's offset
            return coded

        code_pixels(tables, len(tiles), symbols, given=range(0, 2 * planes, 2), cumulative=True)
        store(board, at, np.concatenate([values, np.abs(values - prediction)]) if scheme.errors else values,
              sizes[:, 1])
        coder.step_done()
