"""Training-time entropy models whose coding path goes through the shared tables and ANS coder.

The likelihoods a codec trains on (compressai's factorized density and Gaussian conditional) are the
same densities that are turned into integer tables for coding, so the trained rate is the paid rate
(up to table quantization and, for the Gaussian, snapping the scale to ``SCALE_TABLE``).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from torch import Tensor, nn

from ..errors import EntropyCodingError, InputError
from .coder import SymbolDecoder, SymbolEncoder
from .tables import SCALE_MIN, TableSet, gaussian_scale_tables, scale_to_index

MAX_HALF_WIDTH = 1 << 12
"""Largest learned support on either side of a channel's median; symbols beyond it are escaped."""
_TABLE_BUFFERS = ("_table_freqs", "_table_offsets", "_table_lengths")
_SIZED_BUFFERS = _TABLE_BUFFERS + ("_offset", "_quantized_cdf", "_cdf_length")


class FactorizedPrior(EntropyBottleneck):
    """compressai's learned per-channel density (``forward`` gives noisy outputs and likelihoods)
    plus integer coding tables stored as buffers, so decoders load them instead of recomputing.

    Coding is per channel of ``(N, C, ...)`` tensors: ``q = round(y - median)`` with table ``c``,
    ``y_hat = q + median`` -- the points where ``forward`` evaluates the likelihood in eval mode.
    """

    def __init__(self, channels: int, **kwargs: Any) -> None:
        super().__init__(channels, **kwargs)
        self.register_buffer("_table_freqs", torch.zeros(0, 0, dtype=torch.int32))
        self.register_buffer("_table_offsets", torch.zeros(0, dtype=torch.int32))
        self.register_buffer("_table_lengths", torch.zeros(0, dtype=torch.int32))
        self._tables: TableSet | None = None

    @torch.no_grad()
    def build_tables(self) -> TableSet:
        """Quantize the learned pmf of each channel (in float64 on CPU) over its quantile range.

        Call after training (like compressai's ``update()``), before saving the weights.
        """
        model = copy.deepcopy(self).to("cpu", torch.float64)
        quantiles = model.quantiles[:, 0, :]
        medians = quantiles[:, 1]
        below = torch.ceil(medians - quantiles[:, 0]).clamp(0, MAX_HALF_WIDTH).long()
        above = torch.ceil(quantiles[:, 2] - medians).clamp(0, MAX_HALF_WIDTH).long()
        lengths = below + above + 1
        samples = medians[:, None] - below[:, None] + torch.arange(int(lengths.max()), dtype=torch.float64)
        pmf, lower, upper = model._likelihood(samples[:, None, :], stop_gradient=True)
        channels = torch.arange(len(lengths))
        tail = torch.sigmoid(lower[:, 0, 0]) + torch.sigmoid(-upper[channels, 0, lengths - 1])
        rows = [pmf[c, 0, :n].numpy() for c, n in enumerate(lengths.tolist())]
        tables = TableSet.from_pmfs(rows, (-below).numpy(), tail.numpy())
        device = self.quantiles.device
        for name, array in zip(_TABLE_BUFFERS, (tables.freqs, tables.offsets, tables.lengths)):
            setattr(self, name, torch.from_numpy(array.copy()).to(device))
        self._tables = tables
        return tables

    @property
    def tables(self) -> TableSet:
        """The integer tables (from ``build_tables`` or from loaded weights)."""
        if self._tables is None:
            if self._table_freqs.numel() == 0:
                raise EntropyCodingError("FactorizedPrior has no coding tables: call build_tables() or load weights")
            arrays = {name[len("_table_") :]: getattr(self, name).cpu().numpy() for name in _TABLE_BUFFERS}
            self._tables = TableSet.from_arrays(arrays)
        return self._tables

    def likelihood(self, y_hat: Tensor) -> Tensor:
        """Probability of each bin ``y_hat`` (N, C, ...) under its channel's density, differentiable in
        ``y_hat`` (lower-bounded like in ``forward``)."""
        values = y_hat.transpose(0, 1).reshape(self.channels, 1, -1)
        p = self._likelihood(values)[0]
        if self.use_likelihood_bound:
            p = self.likelihood_lower_bound(p)
        return p.reshape(y_hat.transpose(0, 1).shape).transpose(0, 1)

    def compress(self, y: Tensor, encoder: SymbolEncoder) -> Tensor:  # type: ignore[override]
        """Code ``round(y - median)`` of ``y`` (N, C, ...); returns ``y_hat`` (float32, CPU)."""
        medians = self._medians_like(y.dim())
        q = torch.round(y.detach().cpu().float() - medians)
        encoder.encode_with_tables(q.numpy(), self._indexes(tuple(q.shape)), self.tables)
        return q + medians

    def decompress(self, shape: tuple[int, ...], decoder: SymbolDecoder) -> Tensor:  # type: ignore[override]
        """Inverse of ``compress`` for a tensor of ``shape`` (N, C, ...); returns ``y_hat`` (float32, CPU)."""
        q = decoder.decode_with_tables(self._indexes(tuple(shape)), self.tables)
        return torch.from_numpy(q).float() + self._medians_like(len(shape))

    def _medians_like(self, ndim: int) -> Tensor:
        return self.quantiles[:, 0, 1].detach().cpu().float().reshape(1, -1, *([1] * (ndim - 2)))

    def _indexes(self, shape: tuple[int, ...]) -> np.ndarray:
        if len(shape) < 2 or shape[1] != self.channels:
            raise InputError(f"expected a (N, {self.channels}, ...) tensor, got shape {shape}")
        return np.broadcast_to(np.arange(self.channels).reshape(1, -1, *([1] * (len(shape) - 2))), shape)

    def _load_from_state_dict(self, state_dict: dict[str, Tensor], prefix: str, *args: Any, **kwargs: Any) -> None:
        """Resize the table buffers to the stored ones (their shapes depend on training)."""
        for name in _SIZED_BUFFERS:
            stored = state_dict.get(prefix + name)
            if stored is not None:
                setattr(self, name, torch.empty(stored.shape, dtype=stored.dtype, device=getattr(self, name).device))
        self._tables = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class GaussianConditionalPrior(nn.Module):
    """Gaussian conditional ``y_hat ~ N(means, scales)``: compressai's training likelihood (scales
    lower-bounded at 0.11) and exact coding of ``q = round(y - mu)`` with the shared Gaussian tables.

    ``means``/``scales`` given to ``compress``/``decompress`` must be float64 arrays computed on a
    deterministic path (identical on both sides); this class only codes exactly given them.
    """

    def __init__(self, scale_bound: float = SCALE_MIN, likelihood_bound: float = 1e-9) -> None:
        super().__init__()
        self.conditional = GaussianConditional(None, scale_bound=scale_bound, likelihood_bound=likelihood_bound)

    def forward(
        self, y: Tensor, scales: Tensor, means: Tensor | None = None, training: bool | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(y_hat, likelihoods)``: noisy ``y`` in training, ``round(y - means) + means`` otherwise."""
        return self.conditional(y, scales, means, training)

    def quantize(self, y: Tensor, means: Tensor | None, training: bool) -> Tensor:
        """Uniform noise in training; ``round(y - means) + means`` at eval."""
        return self.conditional.quantize(y, "noise" if training else "dequantize", means)

    def likelihood(self, y_hat: Tensor, scales: Tensor, means: Tensor | None = None) -> Tensor:
        """Probability of each ``y_hat`` bin (lower-bounded like in ``forward``)."""
        p = self.conditional._likelihood(y_hat, scales, means)
        return self.conditional.likelihood_lower_bound(p) if self.conditional.use_likelihood_bound else p

    def compress(self, y: Tensor | np.ndarray, means: np.ndarray, scales: np.ndarray, encoder: SymbolEncoder) -> Tensor:
        """Code ``q = round(y - means)`` with the table of each snapped scale; returns ``q + means`` (float32)."""
        y64 = np.asarray(y.detach().cpu().double() if isinstance(y, Tensor) else y, dtype=np.float64)
        mu = _finite(means, "means", y64.shape)
        residual = y64 - mu
        if not np.isfinite(residual).all():
            raise InputError("y must be finite")
        q = np.rint(residual)
        encoder.encode_with_tables(q, scale_to_index(scales), gaussian_scale_tables())
        return torch.from_numpy(q + mu).float()

    def decompress(self, means: np.ndarray, scales: np.ndarray, decoder: SymbolDecoder) -> Tensor:
        """Inverse of ``compress`` with the same means and scales; returns ``y_hat`` (float32)."""
        mu = _finite(means, "means", np.shape(means))
        q = decoder.decode_with_tables(_shaped(scale_to_index(scales), mu.shape), gaussian_scale_tables())
        return torch.from_numpy(q + mu).float()


def _finite(x: np.ndarray, name: str, shape: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.shape != shape:
        raise InputError(f"{name} has shape {a.shape}, expected {shape}")
    if not np.isfinite(a).all():
        raise InputError(f"{name} must be finite")
    return a


def _shaped(index: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if index.shape != shape:
        raise InputError(f"scales have shape {index.shape}, means {shape}")
    return index
