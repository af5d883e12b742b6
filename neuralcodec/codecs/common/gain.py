"""Gain units: one set of weights covering several rates (Cui et al., "Asymmetric Gained Deep Image
Compression with Continuous Rate Adaptation", CVPR 2021).

A latent is multiplied channel-wise by a learned gain vector before quantization and by a learned
inverse gain after it. One gain pair per trained rate level; a fractional level interpolates the
neighbouring vectors geometrically, which gives a continuous quality knob.
"""

from __future__ import annotations

import torch
from torch import nn


def log_gains_for_lambdas(lambdas: tuple[float, ...]) -> list[float]:
    """Initial log-gains from the rate-distortion trade-offs: at high rate the MSE-optimal
    quantization step scales as λ^(-1/2), so gain_k = sqrt(λ_k / geometric-mean λ)."""
    logs = torch.tensor(lambdas, dtype=torch.float64).log()
    return (0.5 * (logs - logs.mean())).tolist()


class GainUnit(nn.Module):
    """Per-level channel gains ``gain`` (before quantization) and ``inverse`` (after)."""

    def __init__(self, levels: int, channels: int, initial_log_gains: list[float] | None = None) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.levels = levels
        start = torch.zeros(levels) if initial_log_gains is None else torch.tensor(initial_log_gains, dtype=torch.float32)
        if start.shape != (levels,):
            raise ValueError(f"expected {levels} initial log-gains, got {tuple(start.shape)}")
        self.log_gain = nn.Parameter(start[:, None].repeat(1, channels))
        self.log_inverse = nn.Parameter(-start[:, None].repeat(1, channels))

    def _interpolate(self, table: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """Linear interpolation of log-gains at fractional ``level`` (B,) -> (B, C, 1, 1)."""
        level = level.to(table.dtype).clamp(0, self.levels - 1)
        low = level.floor().long().clamp(max=self.levels - 1)
        high = (low + 1).clamp(max=self.levels - 1)
        frac = (level - low.to(level.dtype)).unsqueeze(1)
        mixed = table[low] * (1 - frac) + table[high] * frac
        return mixed.exp()[:, :, None, None]

    def scale(self, latent: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """Apply the forward gain of ``level`` (shape (B,)) to ``latent`` (B, C, H, W)."""
        return latent * self._interpolate(self.log_gain, level)

    def unscale(self, latent: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """Apply the inverse gain of ``level`` to a quantized latent."""
        return latent * self._interpolate(self.log_inverse, level)

    def remapped(self, lambdas: tuple[float, ...], new_lambdas: tuple[float, ...], exponent: float) -> "GainUnit":
        """A gain unit for the levels ``new_lambdas``, started from this one's (trained for ``lambdas``).

        Each new level takes the gains of the trained level nearest in log-λ, shifted by
        ``exponent * log(λ_new / λ_nearest)`` (0.5 for a latent: the high-rate rule of
        :func:`log_gains_for_lambdas`; 0 keeps the gains), so that added levels start where they belong.
        """
        if len(lambdas) != self.levels:
            raise ValueError(f"{len(lambdas)} trade-offs for a gain unit of {self.levels} levels")
        old = torch.tensor(lambdas, dtype=torch.float64).log()
        new = torch.tensor(new_lambdas, dtype=torch.float64).log()
        nearest = (new[:, None] - old[None, :]).abs().argmin(dim=1)
        shift = (exponent * (new - old[nearest])).to(self.log_gain.dtype)[:, None]
        unit = GainUnit(len(new_lambdas), self.log_gain.shape[1])
        with torch.no_grad():
            unit.log_gain.copy_(self.log_gain[nearest] + shift)
            unit.log_inverse.copy_(self.log_inverse[nearest] - shift)
        return unit
