"""Causal prediction and context classes for lossless coding of natural images (integer-exact numpy).

An image is coded as groups of planes: colour (G, R-G, B-G: subtract-green, a reversible decorrelation)
or one grey/alpha plane. Every pixel of a plane gets a MED prediction (LOCO-I's median edge detector) and
a context class from its causal neighbours W, N, NW, NE, WW, NN; the circuit codes the residual
``(x - prediction) mod 256`` given the class. The class is a quantized *activity* times a texture
pattern; how activity is measured is the model's ``ContextScheme``: neighbour gradients only
(``gradients``, the first model), or also the neighbours' own MED errors |x - prediction| (``errors``:
the canvas then carries one error plane per plane, filled like the values). Planes live on a padded
*canvas* whose border is filled causally (row 0 sees zeros above; column 0 sees the pixel above it as its
left neighbours; the last column sees itself as its upper-right neighbour), so an encoder holding the
whole image (``filled_canvas``, ``coding_canvas``) and a decoder filling it pixel by pixel (``store``)
compute the same predictions and classes. Canvases are stacked by tile (T, C, rows, cols): tiles are
coded independently, side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOP, LEFT, RIGHT = 2, 2, 1
"""Canvas border (rows above, columns left and right of the image); one spare row below."""
ACTIVITY_EDGES = np.array([2, 4, 7, 11, 17, 26, 40, 64])
"""Local activity (sum of neighbour gradients) is quantized into ``len(ACTIVITY_EDGES) + 1`` levels."""
TEXTURE_LEVELS = 27
"""Signs (with a dead zone) of three neighbour differences: 3 x 3 x 3 texture patterns."""
CONTEXTS = (len(ACTIVITY_EDGES) + 1) * TEXTURE_LEVELS
"""Number of context classes (243): activity level x texture pattern."""


@dataclass(frozen=True)
class ContextScheme:
    """How a model measures activity (see the module docstring); part of a model's config."""

    name: str
    edges: tuple[int, ...]
    """Activity level boundaries (8 of them: 9 levels)."""
    errors: bool
    """Add the |MED errors| of the six neighbours (the canvas carries them as extra planes)."""

    def channels(self, planes: int) -> int:
        """Canvas channels for a group of ``planes`` planes."""
        return 2 * planes if self.errors else planes

    def classes(self, activity: np.ndarray, texture: np.ndarray) -> np.ndarray:
        """Context classes in [0, CONTEXTS) of activities and texture patterns."""
        return np.searchsorted(np.asarray(self.edges), activity, side="right") * TEXTURE_LEVELS + texture


SCHEMES = {scheme.name: scheme for scheme in (
    ContextScheme("gradients", tuple(ACTIVITY_EDGES.tolist()), errors=False),
    ContextScheme("errors", (6, 9, 12, 17, 24, 35, 53, 95), errors=True),
)}
"""The context schemes by name (edges of ``errors``: the 1/9..8/9 quantiles of its activity on 20 training
photos)."""
MODULUS = 256
Pixels = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Pixel positions (tile, row, col) on a stack of tile canvases."""


def decorrelated(pixels: np.ndarray) -> np.ndarray:
    """Planes (C, H, W) int32 of an (H, W, C) uint8 group of 1 (grey, alpha) or 3 (RGB) channels:
    the channel itself, or G, R - G, B - G (values in -255..255)."""
    x = np.moveaxis(pixels, -1, 0).astype(np.int32)
    if len(x) == 1:
        return x
    red, green, blue = x
    return np.stack([green, red - green, blue - green])


def canvas(tiles: int, channels: int, height: int, width: int) -> np.ndarray:
    """Empty (zero) padded canvases (T, C, height + 3, width + 3) of ``tiles`` tiles of at most height x width
    pixels, for a decoder to fill with :func:`store`."""
    return np.zeros((tiles, channels, height + TOP + 1, width + LEFT + RIGHT), dtype=np.int16)


def filled_canvas(planes: np.ndarray) -> np.ndarray:
    """The canvas (C, H + 3, W + 3) of fully known planes (C, H, W), borders filled as :func:`store` fills them."""
    c, h, w = planes.shape
    out = canvas(1, c, h, w)[0]
    out[:, TOP : TOP + h, LEFT : LEFT + w] = planes
    out[:, TOP + 1 : TOP + h + 1, :LEFT] = planes[:, :, :1]
    out[:, TOP : TOP + h, LEFT + w] = planes[:, :, w - 1]
    return out


def store(board: np.ndarray, at: Pixels, values: np.ndarray, widths: np.ndarray) -> None:
    """Write decoded plane values (C, n) at pixels ``at`` of the tiles of ``board`` (tiles ``widths`` wide),
    with the border copies they feed."""
    tiles, rows, cols = at
    board[tiles, :, rows + TOP, cols + LEFT] = values.T
    first = cols == 0
    for col in range(LEFT):
        board[tiles[first], :, rows[first] + TOP + 1, col] = values[:, first].T
    last = cols == widths[tiles] - 1
    board[tiles[last], :, rows[last] + TOP, cols[last] + LEFT + 1] = values[:, last].T


def predict(board: np.ndarray, at: Pixels, scheme: ContextScheme) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(MED predictions (C, n) int32, activities (C, n), texture patterns (C, n)) of pixels ``at`` from
    their causal neighbours on the canvases (C planes, then C error planes when ``scheme.errors``)."""
    tiles, rows, cols = at
    r, c = rows + TOP, cols + LEFT

    def neighbour(dr: int, dc: int) -> np.ndarray:
        return board[tiles, :, r + dr, c + dc].T.astype(np.int32)

    near = [neighbour(*d) for d in ((0, -1), (-1, 0), (-1, -1), (-1, 1), (0, -2), (-2, 0))]
    planes = len(near[0]) // 2 if scheme.errors else len(near[0])
    w, n, nw, ne, ww, nn = (values[:planes] for values in near)
    activity = np.abs(w - nw) + np.abs(n - nw) + np.abs(n - ne) + (np.abs(w - ww) + np.abs(n - nn)) // 2
    if scheme.errors:
        activity += sum(values[planes:] for values in near)
    high, low = np.maximum(w, n), np.minimum(w, n)
    prediction = np.where(nw >= high, low, np.where(nw <= low, high, w + n - nw))
    texture = (_sign3(n - nw) * 3 + _sign3(w - nw)) * 3 + _sign3(ne - n)
    return prediction, activity, texture


def coding_canvas(planes: np.ndarray, scheme: ContextScheme) -> np.ndarray:
    """The filled canvas of fully known planes (C, H, W) as a coder sees it: the planes, and for
    ``scheme.errors`` their |MED errors| as C more planes."""
    board = filled_canvas(planes)
    if not scheme.errors:
        return board
    _, h, w = planes.shape
    rows, cols = np.divmod(np.arange(h * w), w)
    prediction, _, _ = predict(board[None], (np.zeros_like(rows), rows, cols), SCHEMES["gradients"])
    errors = np.abs(planes.reshape(len(planes), -1) - prediction).reshape(planes.shape)
    return filled_canvas(np.concatenate([planes, errors]))


def _sign3(d: np.ndarray) -> np.ndarray:
    """0, 1, 2 for d <= -2, -2 < d < 3, d >= 3."""
    return (d > -2).astype(np.int32) + (d >= 3)


def residuals(values: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Coded symbols ``(value - prediction) mod 256`` in [0, 256)."""
    return np.mod(values - prediction, MODULUS)


def reconstructed(symbols: np.ndarray, prediction: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Plane values from coded symbols: the 8-bit channel is ``(base + prediction + symbol) mod 256``."""
    return np.mod(base + prediction + symbols, MODULUS) - base


def scan(height: int, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The wavefront: step ``t`` holds the pixels with ``2 * row + col == t`` (their W, N, NW, NE, WW and
    NN neighbours all lie on earlier steps), as (rows, cols) arrays."""
    steps = []
    for t in range(2 * (height - 1) + width):
        rows = np.arange(max(0, (t - width + 2) // 2), min(height - 1, t // 2) + 1)
        steps.append((rows, t - 2 * rows))
    return steps


def recombined(planes: np.ndarray) -> np.ndarray:
    """The (H, W, C) uint8 channels of planes (C, H, W) (the inverse of :func:`decorrelated`)."""
    if len(planes) == 1:
        return np.moveaxis(planes, 0, -1).astype(np.uint8)
    green, red, blue = planes[0], planes[1] + planes[0], planes[2] + planes[0]
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)
