"""One ANS stream per payload: ``SymbolEncoder`` records coding operations, ``SymbolDecoder`` replays them.

The encoder collects operations in *decode* order and ``finish()`` pushes them in reverse onto one
constriction ``AnsCoder`` (a stack), so the decoder pops them in the order the codec calls them.

Gaussian/Laplace symbols are coded as residuals around the rounded mean with zero-mean tables. Codecs
with a continuous mean (the hyperprior) should instead quantize around the mean, ``q = round(y - mu)``,
``y_hat = q + mu``, and code ``q`` with mean 0 (see ``models.GaussianConditionalPrior``).
"""

from __future__ import annotations

import constriction
import numpy as np

from ..errors import EntropyCodingError, InputError
from .tables import MAX_TABLE_LENGTH, PRECISION, TableSet, gaussian_scale_tables, laplace_scale_tables
from .tables import cumulative_counts, scale_to_index

SYMBOL_LIMIT = 1 << 30
"""Largest ``|symbol|`` (and ``|residual|``) the coder accepts."""

_Coder = constriction.stream.stack.AnsCoder
_ESCAPE_LENGTH_LEVELS = 64
_ESCAPE_LENGTH_MODEL = constriction.stream.model.Uniform(_ESCAPE_LENGTH_LEVELS)
_MAX_ESCAPE_LENGTH = 40
_CHUNK_BITS = 16
_UNIFORM = constriction.stream.model.Uniform()
_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)
_CHUNK_ENTRIES = 1 << 18  # probability entries quantized at a time (keeps temporaries in cache)


# ---------------------------------------------------------------- validation


def _int_array(x: object, name: str) -> np.ndarray:
    """``x`` as an integer ndarray; integral floats are accepted, anything else raises ``InputError``."""
    a = np.asarray(x)
    if a.dtype.kind in "iu":
        return a
    if a.dtype.kind == "f" and np.isfinite(a).all() and (a == np.round(a)).all():
        return a.astype(np.int64)
    raise InputError(f"{name} must be integers (got dtype {a.dtype} with non-integer or non-finite values)")


def _check_range(a: np.ndarray, low: int, high: int, name: str, error: type[Exception]) -> None:
    if a.size and (a.min() < low or a.max() > high):
        raise error(f"{name} must be within [{low}, {high}] (got [{a.min()}, {a.max()}])")


def _float_array(x: object, name: str, shape: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if not np.isfinite(a).all():
        raise InputError(f"{name} must be finite (got NaN or inf)")
    try:
        return np.broadcast_to(a, shape)
    except ValueError:
        raise InputError(f"{name} has shape {a.shape}, which does not broadcast to {shape}") from None


def _table_indexes(x: object, tables: TableSet, shape: tuple[int, ...] | None) -> np.ndarray:
    idx = _int_array(x, "table_indexes")
    if shape is not None and idx.shape != shape:
        raise InputError(f"table_indexes shape {idx.shape} differs from symbols shape {shape}")
    _check_range(idx, 0, len(tables) - 1, "table_indexes", InputError)
    return idx


def _categorical_weights(probabilities: object, cumulative: bool = False) -> np.ndarray:
    """Validated rows quantized to integer counts, returned as ``count - 1`` in float32 (n, K).

    ``count - 1`` is what constriction's categorical family needs to reproduce the counts exactly.
    With ``cumulative`` the rows are already the running sums of the probabilities (a caller that gets
    them exactly, e.g. by one integer matrix product, saves the sum here; the counts are the same).
    Rows are processed in chunks so that temporaries stay small for large (n, K).
    """
    p = np.asarray(probabilities)
    if p.ndim != 2 or not 1 <= p.shape[1] <= MAX_TABLE_LENGTH or p.dtype.kind not in "iuf":
        raise InputError(f"probabilities must be a real (n, K) array with 1 <= K <= {MAX_TABLE_LENGTH}, got {p.shape}")
    weights = np.empty(p.shape, dtype=np.float32)
    rows = max(1, _CHUNK_ENTRIES // p.shape[1])
    for start in range(0, p.shape[0], rows):
        block = p[start : start + rows]
        cdf = block.astype(np.float64, copy=False) if cumulative else np.cumsum(block, axis=1, dtype=np.float64)
        totals = cdf[:, -1]
        if not ((cumulative or block.min() >= 0) and np.isfinite(totals).all() and (totals > 0).all()):
            raise InputError("probabilities must be finite and nonnegative, with a positive sum per row")
        cum = cumulative_counts(cdf)
        out = weights[start : start + rows]
        out[:, 0] = cum[:, 0]
        np.subtract(cum[:, 1:], cum[:, :-1], out=out[:, 1:], casting="same_kind")  # exact: integers < 2**24
        if cumulative and not out.min() >= 0:  # (False for NaN too)
            raise InputError("cumulative probabilities must be finite, nonnegative and nondecreasing")
    return weights


def _row_indexes(rows: np.ndarray | None, count: int) -> np.ndarray | slice:
    """``rows`` validated as indexes into ``count`` probability rows; ``slice(None)`` (every row, in order,
    without a copy) when None or ``arange(count)``."""
    if rows is None:
        return slice(None)
    index = _int_array(rows, "rows")
    if index.ndim != 1:
        raise InputError(f"rows must be one-dimensional, got shape {index.shape}")
    _check_range(index, 0, count - 1, "probability rows", InputError)
    return slice(None) if len(index) == count and (index == np.arange(count)).all() else index


def _mean_centers(means: np.ndarray) -> np.ndarray:
    centers = np.rint(means)
    _check_range(centers, -SYMBOL_LIMIT, SYMBOL_LIMIT, "rounded means", EntropyCodingError)
    return centers.astype(np.int64)


# ---------------------------------------------------------------- grouping and escapes


def _group(indexes: np.ndarray, num_tables: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable order that groups positions by table, and the per-table counts (radix sort for <= 16 bit)."""
    dtype = np.uint8 if num_tables <= 1 << 8 else np.uint16 if num_tables <= 1 << 16 else np.int64
    small = indexes.reshape(-1).astype(dtype, copy=False)
    return np.argsort(small, kind="stable"), np.bincount(small, minlength=num_tables)


def _spans(counts: np.ndarray) -> list[tuple[int, int, int]]:
    """(table, start, stop) of each nonempty group in the sorted order."""
    stops = np.cumsum(counts)
    return [(int(k), int(stops[k] - counts[k]), int(stops[k])) for k in np.flatnonzero(counts)]


def _support_bounds(lows: np.ndarray, lengths: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last support symbol (int64) of the rows of the positions selected by ``mask``."""
    low = lows[mask].astype(np.int64)
    return low, low + lengths[mask] - 1


def _escape_codes(values: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elias-gamma code of each escaped value's distance beyond its row's support (and which side).

    ``g = 2 * distance + side + 1 >= 1`` is sent as ``nbits = floor(log2 g)`` (uniform over 64 values)
    and then the ``nbits`` bits of ``g`` below its leading one, in uniform 16-bit chunks.
    """
    side = values > highs
    g = 2 * np.where(side, values - highs - 1, lows - 1 - values) + side + 1
    nbits = np.frexp(g.astype(np.float64))[1].astype(np.int64) - 1
    return nbits, g - (np.int64(1) << nbits)


def _escape_values(nbits: np.ndarray, rest: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
    u = (np.int64(1) << nbits) + rest - 1
    distance, side = u >> 1, (u & 1).astype(bool)
    return np.where(side, highs + 1 + distance, lows - 1 - distance)


def _chunk_widths(nbits: np.ndarray) -> list[np.ndarray]:
    top = int(nbits.max()) if nbits.size else 0
    return [np.clip(nbits - j, 0, _CHUNK_BITS) for j in range(0, top, _CHUNK_BITS)]


def _push_escapes(coder: _Coder, nbits: np.ndarray, rest: np.ndarray) -> None:
    chunks = []
    for j, width in enumerate(_chunk_widths(nbits)):
        used = width > 0
        values = (rest[used] >> (j * _CHUNK_BITS)) & ((np.int64(1) << width[used]) - 1)
        chunks.append((values.astype(np.int32), (np.int64(1) << width[used]).astype(np.int32)))
    for values, sizes in reversed(chunks):
        coder.encode_reverse(values, _UNIFORM, sizes)
    coder.encode_reverse(nbits.astype(np.int32), _ESCAPE_LENGTH_MODEL)


def _pop_escapes(coder: _Coder, count: int) -> tuple[np.ndarray, np.ndarray]:
    nbits = _decode(coder, _ESCAPE_LENGTH_MODEL, count).astype(np.int64)
    if nbits.max() > _MAX_ESCAPE_LENGTH:
        raise EntropyCodingError("corrupt stream: impossible escape length")
    rest = np.zeros(count, dtype=np.int64)
    for j, width in enumerate(_chunk_widths(nbits)):
        used = width > 0
        sizes = (np.int64(1) << width[used]).astype(np.int32)
        rest[used] |= _decode(coder, _UNIFORM, sizes).astype(np.int64) << (j * _CHUNK_BITS)
    return nbits, rest


# ---------------------------------------------------------------- operations


class _TableOp:
    """Symbols grouped by table: entries per group, then the escapes' lengths and chunks."""

    def __init__(self, symbols: np.ndarray, indexes: np.ndarray, tables: TableSet) -> None:
        order, self.counts = _group(indexes, len(tables))
        self.tables = tables
        values = symbols.reshape(-1).astype(np.int32, copy=False)[order]
        lows = np.repeat(tables.offsets, self.counts)
        lengths = np.repeat(tables.lengths, self.counts)
        entries = values - lows
        escaped = entries.view(np.uint32) >= lengths.view(np.uint32)
        self.entries = np.where(escaped, lengths, entries)
        low, high = _support_bounds(lows, lengths, escaped)
        self.nbits, self.rest = _escape_codes(values[escaped].astype(np.int64), low, high)

    def push(self, coder: _Coder) -> None:
        if self.nbits.size:
            _push_escapes(coder, self.nbits, self.rest)
        for k, start, stop in reversed(_spans(self.counts)):
            coder.encode_reverse(self.entries[start:stop], self.tables.model(k))

    def ideal_bits(self) -> float:
        bits = self.tables.bits
        total = sum(float(bits[k, self.entries[a:b]].sum()) for k, a, b in _spans(self.counts))
        return total + float((self.nbits + np.log2(_ESCAPE_LENGTH_LEVELS)).sum())


class _CategoricalOp:
    """Categorical symbols, each with row ``rows[i]`` of the quantized ``weights`` (``count - 1``)."""

    def __init__(self, symbols: np.ndarray, weights: np.ndarray, rows: np.ndarray | slice) -> None:
        self.symbols = symbols.astype(np.int32)
        self.weights = weights
        self.rows = rows

    def push(self, coder: _Coder) -> None:
        if self.symbols.size and self.weights.shape[1] > 1:
            coder.encode_reverse(self.symbols, _CATEGORICAL, self.weights[self.rows])

    def ideal_bits(self) -> float:
        rows = np.arange(self.symbols.size) if isinstance(self.rows, slice) else self.rows
        chosen = self.weights[rows, self.symbols].astype(np.float64) + 1
        return float((PRECISION - np.log2(chosen)).sum())


# ---------------------------------------------------------------- public API


class SymbolEncoder:
    """Collects coding operations (in decode order) and writes them as one ANS stream."""

    def __init__(self) -> None:
        self._ops: list[_TableOp | _CategoricalOp] = []
        self._bits: list[float | None] = []

    def encode_with_tables(self, symbols: np.ndarray, table_indexes: np.ndarray, tables: TableSet) -> None:
        """Code integer ``symbols`` (any shape) with row ``table_indexes[i]`` of ``tables`` each."""
        sym = _int_array(symbols, "symbols")
        _check_range(sym, -SYMBOL_LIMIT, SYMBOL_LIMIT, "symbols", EntropyCodingError)
        self._add(_TableOp(sym, _table_indexes(table_indexes, tables, sym.shape), tables))

    def encode_gaussian(self, symbols: np.ndarray, means: np.ndarray, scales: np.ndarray) -> None:
        """Code integer ``symbols - round(means)`` with the zero-mean discretized Gaussian nearest each scale."""
        self._encode_scaled(symbols, means, scales, gaussian_scale_tables())

    def encode_laplace(self, symbols: np.ndarray, means: np.ndarray, scales: np.ndarray) -> None:
        """Like ``encode_gaussian`` with discretized Laplace densities (scale ``b``: ``exp(-|x|/b) / 2b``)."""
        self._encode_scaled(symbols, means, scales, laplace_scale_tables())

    def encode_categorical(self, symbols: np.ndarray, probabilities: np.ndarray, rows: np.ndarray | None = None,
                           cumulative: bool = False) -> None:
        """Code ``symbols[i] in [0, K)`` with probability row ``probabilities[rows[i]]`` (shape (n, K)).

        ``rows`` lets symbols share rows (each row is quantized once); by default symbol ``i`` has row ``i``.
        With ``cumulative`` the rows hold running sums of the (unnormalized) probabilities instead.
        """
        weights = _categorical_weights(probabilities, cumulative)
        sym = _int_array(symbols, "symbols")
        row_of = _row_indexes(rows, weights.shape[0])
        expected = (weights.shape[0],) if isinstance(row_of, slice) else row_of.shape
        if sym.shape != expected:
            raise InputError(f"symbols shape {sym.shape} does not match the probability rows {expected}")
        _check_range(sym, 0, weights.shape[1] - 1, "categorical symbols", InputError)
        self._add(_CategoricalOp(sym, weights, row_of))

    @property
    def ideal_bits(self) -> float:
        """Sum of ``-log2 p`` of every coded symbol (escapes included) under the integer models used."""
        for i, op in enumerate(self._ops):
            if self._bits[i] is None:
                self._bits[i] = op.ideal_bits()
        return float(sum(self._bits))  # type: ignore[arg-type]

    def finish(self) -> bytes:
        """The coded stream: little-endian 32-bit words, without the zero high bytes of the last word.

        The last word is the top of the ANS state and never zero; its high bytes often are (the state
        is roughly log-uniform), so dropping them saves 1.5 bytes per stream on average. The encoder is
        left unchanged.
        """
        coder = _Coder()
        for op in reversed(self._ops):
            op.push(coder)
        return coder.get_compressed().astype("<u4").tobytes().rstrip(b"\0")

    def _encode_scaled(self, symbols: np.ndarray, means: np.ndarray, scales: np.ndarray, tables: TableSet) -> None:
        """Code ``symbols - round(means)`` with the zero-mean row whose scale is nearest to ``scales``."""
        sym = _int_array(symbols, "symbols")
        _check_range(sym, -SYMBOL_LIMIT, SYMBOL_LIMIT, "symbols", EntropyCodingError)
        residual = sym - _mean_centers(_float_array(means, "means", sym.shape))
        _check_range(residual, -SYMBOL_LIMIT, SYMBOL_LIMIT, "symbols - round(means)", EntropyCodingError)
        self._add(_TableOp(residual, scale_to_index(_float_array(scales, "scales", sym.shape)), tables))

    def _add(self, op: _TableOp | _CategoricalOp) -> None:
        self._ops.append(op)
        self._bits.append(None)


class SymbolDecoder:
    """Replays a ``SymbolEncoder``'s operations, in the same order and with the same parameters."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        raw = bytes(data)
        if raw.endswith(b"\0") and len(raw) % 4:  # (whole words ending in zero: streams of earlier releases)
            raise EntropyCodingError("entropy-coded data cannot end in a zero byte: corrupt stream")
        raw += b"\0" * (-len(raw) % 4)
        try:
            self._coder = _Coder(np.frombuffer(raw, dtype="<u4").astype(np.uint32))
        except ValueError as exc:
            raise EntropyCodingError(f"entropy-coded data is malformed: {exc}") from None

    def decode_with_tables(self, table_indexes: np.ndarray, tables: TableSet) -> np.ndarray:
        """Symbols (int32, shape of ``table_indexes``) coded by ``encode_with_tables``."""
        idx = _table_indexes(table_indexes, tables, None)
        return self._pop_tables(idx, tables)

    def decode_gaussian(self, means: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Symbols (int32, broadcast shape of means and scales) coded by ``encode_gaussian``."""
        return self._decode_scaled(means, scales, gaussian_scale_tables())

    def decode_laplace(self, means: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Symbols (int32, broadcast shape of means and scales) coded by ``encode_laplace``."""
        return self._decode_scaled(means, scales, laplace_scale_tables())

    def decode_categorical(self, probabilities: np.ndarray, rows: np.ndarray | None = None,
                           cumulative: bool = False) -> np.ndarray:
        """Symbols (int32, shape of ``rows``, else (n,)) coded by ``encode_categorical`` with the same arguments."""
        weights = _categorical_weights(probabilities, cumulative)
        weights = weights[_row_indexes(rows, weights.shape[0])]
        if weights.shape[0] == 0 or weights.shape[1] == 1:
            return np.zeros(weights.shape[0], dtype=np.int32)
        return _decode(self._coder, _CATEGORICAL, weights)

    def position(self) -> tuple[int, int]:
        """Where decoding stands (compressed words left, coder state): two equal positions decode alike."""
        return self._coder.pos()

    def assert_exhausted(self) -> None:
        """Raise ``EntropyCodingError`` unless the stream was consumed exactly (detects most corruption)."""
        if not self._coder.is_empty():
            raise EntropyCodingError("entropy-coded data has trailing content: corrupt or mismatched stream")

    def _decode_scaled(self, means: np.ndarray, scales: np.ndarray, tables: TableSet) -> np.ndarray:
        try:
            shape = np.broadcast_shapes(np.shape(means), np.shape(scales))
        except ValueError:
            raise InputError(f"means {np.shape(means)} and scales {np.shape(scales)} do not broadcast") from None
        centers = _mean_centers(_float_array(means, "means", shape))
        index = scale_to_index(_float_array(scales, "scales", shape))
        symbols = self._pop_tables(index, tables) + centers
        _check_range(symbols, -SYMBOL_LIMIT, SYMBOL_LIMIT, "decoded symbols (corrupt stream?)", EntropyCodingError)
        return symbols.astype(np.int32)

    def _pop_tables(self, indexes: np.ndarray, tables: TableSet) -> np.ndarray:
        order, counts = _group(indexes, len(tables))
        entries = np.empty(order.size, dtype=np.int32)
        for k, start, stop in _spans(counts):
            entries[start:stop] = _decode(self._coder, tables.model(k), stop - start)
        lows = np.repeat(tables.offsets, counts)
        lengths = np.repeat(tables.lengths, counts)
        values = entries + lows
        escaped = entries == lengths
        if escaped.any():
            nbits, rest = _pop_escapes(self._coder, int(escaped.sum()))
            escapes = _escape_values(nbits, rest, *_support_bounds(lows, lengths, escaped))
            _check_range(escapes, -SYMBOL_LIMIT, SYMBOL_LIMIT, "decoded symbols (corrupt stream?)", EntropyCodingError)
            values[escaped] = escapes
        out = np.empty_like(values)
        out[order] = values
        return out.reshape(indexes.shape)


def _decode(coder: _Coder, model: object, *params: object) -> np.ndarray:
    """constriction's ``decode``, with its errors on malformed data turned into ``EntropyCodingError``."""
    try:
        return coder.decode(model, *params)
    except (ValueError, RuntimeError, OverflowError) as exc:
        raise EntropyCodingError(f"entropy-coded data is malformed: {exc}") from exc
