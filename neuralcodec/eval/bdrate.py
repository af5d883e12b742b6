"""Bjøntegaard deltas between two rate-distortion curves.

A curve is a sequence of ``(rate, quality)`` points (rate in any positive unit such as bpp or
kbps; quality in dB such as PSNR). Two interpolations are offered:

- ``"cubic"``: the classic VCEG-M33 method, a least-squares cubic polynomial through the points
  (needs >= 4 points per curve);
- ``"pchip"``: the common "piecewise cubic" variant, a monotone piecewise-cubic Hermite
  interpolant (scipy's PchipInterpolator) through the points (needs >= 2 points per curve).

Both integrate exactly over the interval where the two curves overlap: quality for BD-rate,
log-rate for BD-PSNR.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy.interpolate import PchipInterpolator

from neuralcodec.errors import InputError

Curve = Sequence[tuple[float, float]]
Method = Literal["cubic", "pchip"]

_MIN_POINTS: dict[str, int] = {"cubic": 4, "pchip": 2}


def _log_rate_and_quality(curve: Curve, method: str, label: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate one curve; return (natural log of rate, quality) sorted by increasing rate."""
    if method not in _MIN_POINTS:
        raise InputError(f"unknown BD method {method!r}; choose one of {sorted(_MIN_POINTS)}")
    points = np.asarray(curve, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise InputError(f"{label} curve must be a list of (rate, quality) pairs")
    if len(points) < _MIN_POINTS[method]:
        raise InputError(
            f"{label} curve has {len(points)} points; {method} BD needs >= {_MIN_POINTS[method]}"
        )
    if not np.all(np.isfinite(points)) or np.any(points[:, 0] <= 0):
        raise InputError(f"{label} curve needs finite qualities and finite rates > 0")
    points = points[np.argsort(points[:, 0])]
    if np.any(np.diff(points[:, 0]) <= 0) or np.any(np.diff(points[:, 1]) <= 0):
        raise InputError(f"{label} curve is not strictly increasing in both rate and quality")
    return np.log(points[:, 0]), points[:, 1]


def _overlap(a: np.ndarray, b: np.ndarray, what: str) -> tuple[float, float]:
    """The interval covered by both sorted samples ``a`` and ``b``; InputError if it is empty."""
    low, high = max(a[0], b[0]), min(a[-1], b[-1])
    if high <= low:
        raise InputError(f"the two curves do not overlap in {what}")
    return float(low), float(high)


def _mean_value(x: np.ndarray, y: np.ndarray, low: float, high: float, method: str) -> float:
    """Mean over [low, high] of the curve y(x) interpolated by ``method`` (x strictly increasing)."""
    if method == "cubic":
        antiderivative = np.polyint(np.polyfit(x, y, 3))
        area = np.polyval(antiderivative, high) - np.polyval(antiderivative, low)
    else:
        area = PchipInterpolator(x, y).integrate(low, high)
    return float(area) / (high - low)


def bd_rate(anchor: Curve, test: Curve, method: Method = "cubic") -> float:
    """Average rate difference of ``test`` vs ``anchor`` at equal quality, in percent.

    Negative means the test codec needs fewer bits for the same quality.
    """
    log_rate_a, quality_a = _log_rate_and_quality(anchor, method, "anchor")
    log_rate_t, quality_t = _log_rate_and_quality(test, method, "test")
    low, high = _overlap(quality_a, quality_t, "quality")
    mean_diff = _mean_value(quality_t, log_rate_t, low, high, method) - _mean_value(
        quality_a, log_rate_a, low, high, method
    )
    return float(np.expm1(mean_diff) * 100.0)


def bd_psnr(anchor: Curve, test: Curve, method: Method = "cubic") -> float:
    """Average quality difference (dB, or the quality's unit) of ``test`` vs ``anchor`` at equal rate.

    Positive means the test codec reaches a higher quality for the same rate.
    """
    log_rate_a, quality_a = _log_rate_and_quality(anchor, method, "anchor")
    log_rate_t, quality_t = _log_rate_and_quality(test, method, "test")
    low, high = _overlap(log_rate_a, log_rate_t, "rate")
    return _mean_value(log_rate_t, quality_t, low, high, method) - _mean_value(
        log_rate_a, quality_a, low, high, method
    )


def bd_rate_or_reason(anchor: Curve, test: Curve, method: Method = "pchip") -> float | str:
    """:func:`bd_rate` rounded to 0.01 %, or ``"n/a (why)"`` where it is undefined (no overlap, too few
    points), for reports that list many codec pairs."""
    try:
        return round(bd_rate(anchor, test, method=method), 2)
    except Exception as error:  # any reason the curves cannot be compared is reported, not raised
        return f"n/a ({error})"


def rate_at_quality(curve: Curve, target: float) -> float | None:
    """The lowest rate at which ``curve`` reaches quality ``target`` (higher quality = better), or None
    when no point does.

    The curve is first made monotone by keeping, at every rate, the best quality reached at that rate or
    below (a codec can always spend the bits of a better setting); between the two points that bracket
    ``target`` the rate is interpolated linearly in log-rate. Used for "rate at parity task accuracy".
    """
    points = sorted(curve)
    if not points or any(rate <= 0 for rate, _ in points):
        raise InputError("rate_at_quality needs points with positive rates")
    best = -np.inf
    previous: tuple[float, float] | None = None
    for rate, quality in points:
        if quality > best:
            if quality >= target:
                if previous is None:
                    return float(rate)
                (r0, q0) = previous
                fraction = (target - q0) / (quality - q0)
                return float(np.exp(np.log(r0) + fraction * (np.log(rate) - np.log(r0))))
            best = quality
            previous = (rate, quality)
    return None
