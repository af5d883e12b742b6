"""Block motion for motion-compensated video coding: estimation (encoder only), exact prediction, and
coding of the motion field through the entropy backend.

The motion field holds one vector per ``BLOCK`` x ``BLOCK`` block of the frame, in half-pixel units
``(dy, dx)``. Prediction reads the reference frame at the displaced position with integer bilinear
interpolation (``(a·wa + b·wb + c·wc + d·wd + 2) >> 2``) and replicates the reference's edges outside
it, so encoder and decoder predictions are identical on any machine: no floating point is involved.
Overlapped block motion compensation (files that say so) mixes, at each pixel, the reads of its own
block's vector and of the nearer neighbours' vectors with linear-ramp integer weights: the prediction
then has no edges at block boundaries, which a residual coder with whole-frame transforms pays for.

Estimation is a coarse-to-fine block search on the luma ``R + 2G + B`` (a full search of ±``SEARCH``
pixels at quarter resolution, ±1 refinements at half and full resolution, then the eight half-pixel
neighbours), minimizing SAD plus a small penalty per half-pixel of vector length, so that flat or
static blocks keep the zero vector (cheapest to code); a block then takes its neighbours' median vector
when that loses little SAD — or, for a field coded with the previous one as context, each vector (in
raster order) becomes the cheapest of its own, the median and the previous field's by SAD plus its
estimated code length under that context.

Coding: each vector is predicted by the component-wise median of its left, top and top-right
neighbours (the decoded ones) and the difference is coded with a discretized Laplace whose scale grows
with the neighbours' prediction errors — or, when the previous frame's field is given (files with the
``temporal_motion`` flag, after a P-frame), with how far that field's vector at the block lies from the
prediction: motion persists, so where it agrees with the neighbours the vector is almost certainly
their median. Blocks on one anti-diagonal ``2·row + column`` do not depend on each other, so a frame's
field is coded in ``2·rows + columns`` batches.
"""

from __future__ import annotations

import numpy as np

from neuralcodec.entropy import SymbolDecoder, SymbolEncoder
from neuralcodec.errors import CorruptFileError, InputError

BLOCK = 16
"""Side of a motion block, in pixels."""
SEARCH = 16
"""Largest displacement the estimator searches, in whole pixels per component."""
MAX_VECTOR = 2 * (SEARCH + 2)
"""Largest vector component a decoder accepts, in half-pixel units."""
LENGTH_PENALTY = 8
"""SAD units (of the R + 2G + B luma) charged per half-pixel of vector length during estimation."""
MERGE_MARGIN = 100
"""SAD units a block may lose by taking its neighbours' median vector instead of its own best one."""
MERGE_BIT_COST = 6
"""SAD units per estimated bit of a vector's code when the field is coded with the previous one as
context and each vector is chosen among its own, the neighbours' median and the previous field's (SAD +
this x bits): the better of 6 and 20 on the training clips."""
_SCALES = np.array([0.11, 0.25, 0.5, 0.8, 1.2, 1.6, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0])
"""Laplace scale of a vector difference by the summed absolute prediction errors of its neighbours."""
TEMPORAL_SCALES = np.array([0.12, 0.45, 1.2, 2.0, 3.5, 8.0])
"""Laplace scale of a vector difference by the previous field's disagreement with the median prediction
(that component's, in half pixels: 0, 1, 2, 3-4, 5-8, more): maximum-likelihood fits on the fields of
the training clips (Vimeo, synthetic camera motion and moving objects; qualities 1 and 4), rounded; the
neighbours' errors add next to nothing to it (a table by both: 1% fewer bits)."""
_TEMPORAL_BOUNDS = np.array([0, 1, 2, 4, 8])


def field_shape(height: int, width: int) -> tuple[int, int]:
    """(rows, columns) of the motion field of a ``height`` x ``width`` frame."""
    return -(-height // BLOCK), -(-width // BLOCK)


# ----------------------------------------------------------------------------- prediction
def predict(reference: np.ndarray, motion: np.ndarray, overlapped: bool = False) -> np.ndarray:
    """The motion-compensated prediction (H, W, C) uint8 of ``reference`` (H, W, C) uint8 under the
    half-pixel block field ``motion`` (rows, columns, 2), exactly (integer arithmetic); ``overlapped``:
    with overlapped block motion compensation (:func:`_overlapped_prediction`)."""
    if overlapped:
        return _overlapped_prediction(reference, motion)
    height, width = reference.shape[:2]
    vectors = np.repeat(np.repeat(motion.astype(np.int64), BLOCK, axis=0), BLOCK, axis=1)[:height, :width]
    ys = 2 * np.arange(height, dtype=np.int64)[:, None] + vectors[..., 0]
    xs = 2 * np.arange(width, dtype=np.int64)[None, :] + vectors[..., 1]
    return _interpolated(reference.astype(np.int32), ys, xs).astype(np.uint8)


def _overlap_weights(size: int, blocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Along one axis of ``size`` pixels in ``blocks`` blocks: each pixel's block, the nearer neighbouring
    block (itself at the field's edge), and their weights in units of 1/(2·BLOCK): a linear ramp from
    BLOCK + 1 at a block's edge to 2·BLOCK - 1 at its centre, the neighbour taking the rest."""
    pixels = np.arange(size)
    own, offset = pixels // BLOCK, pixels % BLOCK
    first_half = offset < BLOCK // 2
    neighbour = np.clip(np.where(first_half, own - 1, own + 1), 0, blocks - 1)
    own_weight = np.where(first_half, BLOCK + 1 + 2 * offset, 3 * BLOCK - 1 - 2 * offset)
    return own, neighbour, own_weight, 2 * BLOCK - own_weight


def _overlapped_prediction(reference: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """Overlapped block motion compensation: each pixel is the weighted mean of its reference read with
    the vectors of its own block and of the nearer neighbouring blocks across each axis (the four blocks
    of a 2x2 neighbourhood, separable linear-ramp weights summing to (2·BLOCK)²), so that the prediction
    has no edges at block boundaries. Integer arithmetic, one rounding at the end."""
    height, width = reference.shape[:2]
    rows, columns = motion.shape[:2]
    image, field = reference.astype(np.int64), motion.astype(np.int64)
    own_row, near_row, own_wy, near_wy = _overlap_weights(height, rows)
    own_col, near_col, own_wx, near_wx = _overlap_weights(width, columns)
    total = np.zeros(reference.shape, dtype=np.int64)
    for block_rows, wy in ((own_row, own_wy), (near_row, near_wy)):
        for block_columns, wx in ((own_col, own_wx), (near_col, near_wx)):
            vectors = field[block_rows[:, None], block_columns[None, :]]
            ys = 2 * np.arange(height, dtype=np.int64)[:, None] + vectors[..., 0]
            xs = 2 * np.arange(width, dtype=np.int64)[None, :] + vectors[..., 1]
            total += _interpolated_sum(image, ys, xs) * (wy[:, None] * wx[None, :])[..., None]
    shift = 2 + 2 * ((2 * BLOCK).bit_length() - 1)  # bilinear sums x4, weights x (2·BLOCK)², a power of two
    return ((total + (1 << (shift - 1))) >> shift).astype(np.uint8)


def _interpolated(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """The integer image (H, W) or (H, W, C) read at half-pixel coordinates ``ys``, ``xs`` (broadcastable
    integer arrays): the rounded bilinear mean of the neighbours, edges replicated."""
    return (_interpolated_sum(image, ys, xs) + 2) >> 2


def _interpolated_sum(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Four times the bilinear mean of :func:`_interpolated`, unrounded."""
    height, width = image.shape[:2]
    fy, fx, y0, x0 = ys & 1, xs & 1, ys >> 1, xs >> 1
    y1, x1 = np.clip(y0 + fy, 0, height - 1), np.clip(x0 + fx, 0, width - 1)
    y0, x0 = np.clip(y0, 0, height - 1), np.clip(x0, 0, width - 1)
    if image.ndim == 3:
        fy, fx = fy[..., None], fx[..., None]
    return (image[y0, x0] * ((2 - fx) * (2 - fy)) + image[y0, x1] * (fx * (2 - fy))
            + image[y1, x0] * ((2 - fx) * fy) + image[y1, x1] * (fx * fy))


# ----------------------------------------------------------------------------- estimation
def _luma(frame: np.ndarray) -> np.ndarray:
    rgb = frame.astype(np.int32)
    return rgb[..., 0] + 2 * rgb[..., 1] + rgb[..., 2]


def _padded(plane: np.ndarray, rows: int, columns: int, block: int) -> np.ndarray:
    height, width = plane.shape
    return np.pad(plane, ((0, rows * block - height), (0, columns * block - width)), mode="edge")


def _downsampled(plane: np.ndarray, factor: int) -> np.ndarray:
    height, width = plane.shape
    return plane.reshape(height // factor, factor, width // factor, factor).sum(axis=(1, 3))


def _block_sad(current: np.ndarray, reference: np.ndarray, vectors: np.ndarray, block: int) -> np.ndarray:
    """SAD per block of ``current`` against ``reference`` displaced by whole-pixel ``vectors`` (rows, cols, 2)."""
    height, width = current.shape
    shifts = np.repeat(np.repeat(vectors, block, axis=0), block, axis=1)
    ys = np.clip(np.arange(height)[:, None] + shifts[..., 0], 0, height - 1)
    xs = np.clip(np.arange(width)[None, :] + shifts[..., 1], 0, width - 1)
    diff = np.abs(current - reference[ys, xs])
    return diff.reshape(height // block, block, width // block, block).sum(axis=(1, 3))


def _refine(current: np.ndarray, reference: np.ndarray, vectors: np.ndarray, block: int, radius: int,
            penalty: float) -> np.ndarray:
    """Best whole-pixel vector per block within ``radius`` of ``vectors`` (SAD + penalty x length)."""
    best = vectors.copy()
    best_cost = np.full(vectors.shape[:2], np.inf)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            candidate = vectors + np.array([dy, dx])
            cost = _block_sad(current, reference, candidate, block) + penalty * np.abs(candidate).sum(axis=-1)
            better = cost < best_cost
            best[better], best_cost[better] = candidate[better], cost[better]
    return best


def estimate_motion(reference: np.ndarray, current: np.ndarray, rate_weight: float = 1.0,
                    previous: np.ndarray | None = None) -> np.ndarray:
    """A half-pixel block field (rows, columns, 2) int32 predicting ``current`` from ``reference``
    (both (H, W, 3) uint8) — see the module docstring. ``rate_weight`` scales the penalties that trade
    prediction error for cheaper vectors (larger at lower rates); ``previous``: the previous frame's
    field when the field will be coded with it as context (then each vector is chosen by its estimated
    code length under that context). Encoder-side only: any field decodes."""
    height, width = current.shape[:2]
    rows, columns = field_shape(height, width)
    cur, ref = (_padded(_luma(f), rows, columns, BLOCK) for f in (current, reference))
    vectors = np.zeros((rows, columns, 2), dtype=np.int64)
    for factor in (4, 2, 1):
        radius = SEARCH // 4 if factor == 4 else 1
        scaled = BLOCK // factor
        # the penalty is per half pixel at full resolution: a step here is 2·factor half pixels
        vectors = _refine(_downsampled(cur, factor), _downsampled(ref, factor), vectors, scaled, radius,
                          rate_weight * LENGTH_PENALTY * 2 * factor)
        if factor > 1:
            vectors = 2 * vectors
    field = _half_pixel(current, reference, 2 * vectors, rate_weight * LENGTH_PENALTY)
    if previous is None:
        return _merged(_luma(current), _luma(reference), field, rate_weight * MERGE_MARGIN)
    return _chosen_with_previous(_luma(current), _luma(reference), field, _previous_field(previous, rows, columns),
                                 rate_weight * MERGE_BIT_COST)


def _block_sad_at(current: np.ndarray, reference: np.ndarray, row: int, column: int, vector: np.ndarray) -> int:
    """SAD of one block of the luma ``current`` against the luma ``reference`` read at half-pixel ``vector``."""
    height, width = current.shape
    top, left = row * BLOCK, column * BLOCK
    ys = 2 * np.arange(top, min(top + BLOCK, height))[:, None] + int(vector[0])
    xs = 2 * np.arange(left, min(left + BLOCK, width))[None, :] + int(vector[1])
    predicted = _interpolated(reference, ys, xs)
    return int(np.abs(current[top:top + BLOCK, left:left + BLOCK] - predicted).sum())


def _merged(current: np.ndarray, reference: np.ndarray, field: np.ndarray, margin: float) -> np.ndarray:
    """``field`` with each block (in raster order) set to its neighbours' median vector — what costs the
    least to code — when that loses at most ``margin`` of SAD."""
    merged = field.astype(np.int64)
    rows, columns = field.shape[:2]
    for row in range(rows):
        for column in range(columns):
            prediction = _median_prediction(merged, np.array([row]), np.array([column]))[0]
            own = merged[row, column]
            if (prediction != own).any() and _block_sad_at(current, reference, row, column, prediction) \
                    <= _block_sad_at(current, reference, row, column, own) + margin:
                merged[row, column] = prediction
    return merged.astype(np.int32)


def _chosen_with_previous(current: np.ndarray, reference: np.ndarray, field: np.ndarray, previous: np.ndarray,
                          bit_cost: float) -> np.ndarray:
    """``field`` with each block (in raster order) set to the cheapest of its own vector, its neighbours'
    median and the ``previous`` field's vector at the block: SAD + ``bit_cost`` x the estimated bits of
    the vector's code under the temporal context (:func:`_temporal_scales`)."""
    chosen = field.astype(np.int64)
    rows, columns = field.shape[:2]
    for row in range(rows):
        for column in range(columns):
            prediction = _median_prediction(chosen, np.array([row]), np.array([column]))[0]
            scales = _temporal_scales(previous[row, column], prediction)
            candidates = {tuple(v): v for v in (chosen[row, column], prediction, previous[row, column])}
            chosen[row, column] = min(candidates.values(), key=lambda v: _block_sad_at(
                current, reference, row, column, v) + bit_cost * _laplace_bits(v - prediction, scales))
    return chosen.astype(np.int32)


def _laplace_bits(differences: np.ndarray, scales: np.ndarray) -> float:
    """Estimated code length (bits) of integer ``differences`` under discretized Laplace densities."""
    magnitude = np.abs(differences).astype(np.float64)
    below, above = np.exp(-np.maximum(magnitude - 0.5, 0) / scales), np.exp(-(magnitude + 0.5) / scales)
    p = np.where(magnitude == 0, 1 - above, (below - above) / 2)
    return float(-np.log2(np.maximum(p, 1e-12)).sum())


def _half_pixel(current: np.ndarray, reference: np.ndarray, vectors: np.ndarray, penalty: float) -> np.ndarray:
    """The best of each half-pixel field vector and its eight half-pixel neighbours."""
    height, width = current.shape[:2]
    rows, columns = vectors.shape[:2]
    target = _padded(_luma(current), rows, columns, BLOCK)
    best, best_cost = vectors.copy(), np.full((rows, columns), np.inf)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            candidate = vectors + np.array([dy, dx])
            predicted = _padded(_luma(predict(reference, candidate)), rows, columns, BLOCK)
            sad = np.abs(target - predicted).reshape(rows, BLOCK, columns, BLOCK).sum(axis=(1, 3))
            cost = sad + penalty * np.abs(candidate).sum(axis=-1)
            better = cost < best_cost
            best[better], best_cost[better] = candidate[better], cost[better]
    return np.clip(best, -MAX_VECTOR, MAX_VECTOR).astype(np.int32)


# ----------------------------------------------------------------------------- coding
def _diagonals(rows: int, columns: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Block coordinates grouped by anti-diagonal ``2·row + column``, in coding order."""
    r, c = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    key = (2 * r + c).ravel()
    order = np.argsort(key, kind="stable")
    splits = np.flatnonzero(np.diff(key[order])) + 1
    return [(r.ravel()[i], c.ravel()[i]) for i in np.split(order, splits)]


def _neighbour(field: np.ndarray, rows: np.ndarray, columns: np.ndarray, dr: int, dc: int) -> np.ndarray:
    """``field`` at (rows + dr, columns + dc), zero outside the field."""
    r, c = rows + dr, columns + dc
    inside = (r >= 0) & (c >= 0) & (c < field.shape[1])
    values = np.zeros((len(rows),) + field.shape[2:], dtype=field.dtype)
    values[inside] = field[r[inside], c[inside]]
    return values


def _median_prediction(field: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The component-wise median of the left, top and top-right vectors of the blocks at (rows, columns)."""
    neighbours = [_neighbour(field, rows, columns, dr, dc) for dr, dc in ((0, -1), (-1, 0), (-1, 1))]
    return np.median(np.stack(neighbours), axis=0).astype(np.int64)


def _context(field: np.ndarray, errors: np.ndarray, rows: np.ndarray, columns: np.ndarray,
             previous: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(median predictions, Laplace scales) of the blocks at (rows, columns), from decoded neighbours
    and, if given, the ``previous`` field."""
    prediction = _median_prediction(field, rows, columns)
    if previous is not None:
        return prediction, _temporal_scales(previous[rows, columns], prediction)
    activity = _neighbour(errors, rows, columns, 0, -1) + _neighbour(errors, rows, columns, -1, 0)
    return prediction, _SCALES[np.minimum(activity, len(_SCALES) - 1)]


def _temporal_scales(previous: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Laplace scales of vector differences by the previous field's vectors' disagreement with the predictions."""
    return TEMPORAL_SCALES[np.searchsorted(_TEMPORAL_BOUNDS, np.abs(previous - prediction))]


def _previous_field(previous: np.ndarray | None, rows: int, columns: int) -> np.ndarray | None:
    if previous is None:
        return None
    if previous.shape != (rows, columns, 2):
        raise InputError(f"the previous motion field has shape {previous.shape}, not {(rows, columns, 2)}")
    return previous.astype(np.int64)


def encode_motion(motion: np.ndarray, encoder: SymbolEncoder, previous: np.ndarray | None = None) -> None:
    """Push the field ``motion`` (rows, columns, 2) to ``encoder`` (see the module docstring); ``previous``:
    the previous frame's field (same shape), coded as context."""
    rows, columns = motion.shape[:2]
    field, previous = motion.astype(np.int64), _previous_field(previous, rows, columns)
    errors = np.zeros((rows, columns, 2), dtype=np.int64)
    for r, c in _diagonals(rows, columns):
        prediction, scales = _context(field, errors, r, c, previous)
        encoder.encode_laplace(field[r, c], prediction.astype(np.float64), scales)
        errors[r, c] = np.abs(field[r, c] - prediction)


def decode_motion(rows: int, columns: int, decoder: SymbolDecoder, previous: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`encode_motion`; CorruptFileError for a vector no encoder writes."""
    field, previous = np.zeros((rows, columns, 2), dtype=np.int64), _previous_field(previous, rows, columns)
    errors = np.zeros_like(field)
    for r, c in _diagonals(rows, columns):
        prediction, scales = _context(field, errors, r, c, previous)
        field[r, c] = decoder.decode_laplace(prediction.astype(np.float64), scales)
        errors[r, c] = np.abs(field[r, c] - prediction)
    if np.abs(field).max(initial=0) > MAX_VECTOR:
        raise CorruptFileError(f"a motion vector exceeds ±{MAX_VECTOR} half pixels")
    return field.astype(np.int32)
