"""Training-time entropy models whose coding path goes through the shared tables and ANS coder.

The likelihoods a codec trains on (the factorized density and the Gaussian conditional of Ballé et al.
2018) are the same densities that are turned into integer tables for coding, so the trained rate is
the paid rate (up to table quantization and, for the Gaussian, snapping the scale to ``SCALE_TABLE``).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import EntropyCodingError, InputError
from .coder import SymbolDecoder, SymbolEncoder
from .lower_bound import LowerBound
from .tables import SCALE_MIN, TableSet, gaussian_scale_tables, scale_to_index

MAX_HALF_WIDTH = 1 << 12
"""Largest learned support on either side of a channel's median; symbols beyond it are escaped."""
LIKELIHOOD_BOUND = 1e-9
"""Lower bound of every training likelihood (keeps ``log2`` finite)."""
_TABLE_BUFFERS = ("_table_freqs", "_table_offsets", "_table_lengths")


def quantize(y: Tensor, means: Tensor | None, training: bool) -> Tensor:
    """``y`` plus uniform noise in [-1/2, 1/2) in training; ``round(y - means) + means`` otherwise."""
    if training:
        return y + torch.empty_like(y).uniform_(-0.5, 0.5)
    return torch.round(y) if means is None else torch.round(y - means) + means


class FactorizedPrior(nn.Module):
    """The learned per-channel density of Ballé et al. 2018 (appendix 6.1), plus integer coding tables
    stored as buffers, so decoders load them instead of recomputing.

    The density of channel ``c`` is the derivative of a learned cumulative ``sigmoid(f_c(x))``, where
    ``f_c`` chains ``len(filters) + 1`` layers ``h -> softplus(H_k) h + b_k`` (with ``h += tanh(a_k) *
    tanh(h)`` after all but the last); ``forward`` gives noisy outputs and bin likelihoods
    ``sigmoid(f(x + 1/2)) - sigmoid(f(x - 1/2))``. ``quantiles`` (C, 1, 3) tracks each channel's
    ``tail_mass / 2``, median and ``1 - tail_mass / 2`` quantiles, fitted by :meth:`aux_loss`.

    Coding is per channel of ``(N, C, ...)`` tensors: ``q = round(y - median)`` with table ``c``,
    ``y_hat = q + median`` -- the points where ``forward`` evaluates the likelihood in eval mode.
    """

    target: Tensor

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3, 3), init_scale: float = 10.0,
                 tail_mass: float = 1e-9) -> None:
        super().__init__()
        self.channels = int(channels)
        self.filters = tuple(filters)
        widths = (1, *self.filters, 1)
        scale = init_scale ** (1 / (len(self.filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for layer, (fan_in, fan_out) in enumerate(zip(widths, widths[1:])):
            # softplus(matrix) = 1 / (scale * fan_out): the initial density is wide (about init_scale)
            self.matrices.append(nn.Parameter(torch.full((self.channels, fan_out, fan_in),
                                                         math.log(math.expm1(1 / scale / fan_out)))))
            self.biases.append(nn.Parameter(torch.empty(self.channels, fan_out, 1).uniform_(-0.5, 0.5)))
            if layer < len(self.filters):
                self.factors.append(nn.Parameter(torch.zeros(self.channels, fan_out, 1)))
        self.quantiles = nn.Parameter(torch.tensor([-init_scale, 0.0, init_scale]).repeat(self.channels, 1, 1))
        logit = math.log(2 / tail_mass - 1)
        self.register_buffer("target", torch.tensor([-logit, 0.0, logit]), persistent=False)
        self.likelihood_lower_bound = LowerBound(LIKELIHOOD_BOUND)
        self.register_buffer("_table_freqs", torch.zeros(0, 0, dtype=torch.int32))
        self.register_buffer("_table_offsets", torch.zeros(0, dtype=torch.int32))
        self.register_buffer("_table_lengths", torch.zeros(0, dtype=torch.int32))
        self._tables: TableSet | None = None

    def logits_cumulative(self, x: Tensor, stop_gradient: bool = False) -> Tensor:
        """``f_c(x)`` for ``x`` of shape (C, 1, K): the logits of each channel's cumulative at ``x``."""
        logits = x
        for layer, (matrix, bias) in enumerate(zip(self.matrices, self.biases)):
            factor = self.factors[layer] if layer < len(self.factors) else None
            if stop_gradient:
                matrix, bias = matrix.detach(), bias.detach()
                factor = None if factor is None else factor.detach()
            logits = torch.matmul(F.softplus(matrix), logits) + bias
            if factor is not None:
                logits = logits + torch.tanh(factor) * torch.tanh(logits)
        return logits

    def bin_likelihood(self, x: Tensor, stop_gradient: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """``(p, lower, upper)`` for ``x`` of shape (C, 1, K): probability of the unit bin around ``x`` and
        the logits of its lower and upper edges (not lower-bounded).

        ``p`` is the plain difference of the sigmoids, without the reference code's sign trick (which
        evaluates both on the side of the median where they are small): the shipped tables were built
        from the plain difference, and the sign trick changes some of their integer frequencies."""
        lower = self.logits_cumulative(x - 0.5, stop_gradient)
        upper = self.logits_cumulative(x + 0.5, stop_gradient)
        return torch.sigmoid(upper) - torch.sigmoid(lower), lower, upper

    def forward(self, x: Tensor, training: bool | None = None) -> tuple[Tensor, Tensor]:
        """``(x_hat, likelihoods)`` of ``x`` (N, C, ...): noisy ``x`` in training, ``round(x - median) +
        median`` otherwise, and the (lower-bounded) likelihood of each ``x_hat``."""
        training = self.training if training is None else training
        per_channel = x.transpose(0, 1).contiguous()
        values = quantize(per_channel.reshape(self.channels, 1, -1), self.quantiles[:, :, 1:2], training)
        likelihood = self.likelihood_lower_bound(self.bin_likelihood(values)[0])
        shape = per_channel.shape
        return (values.reshape(shape).transpose(0, 1).contiguous(),
                likelihood.reshape(shape).transpose(0, 1).contiguous())

    def aux_parameters(self) -> list[nn.Parameter]:
        """The parameters :meth:`aux_loss` trains (the quantiles), kept out of the main optimizer."""
        return [self.quantiles]

    def aux_loss(self) -> Tensor:
        """``sum |f(quantiles) - target|``: fits the quantiles to the current density (which it does not
        change); the tables span each channel's fitted quantile range."""
        return (self.logits_cumulative(self.quantiles, stop_gradient=True) - self.target).abs().sum()

    @torch.no_grad()
    def build_tables(self) -> TableSet:
        """Quantize the learned pmf of each channel (in float64 on CPU) over its quantile range.

        Call after training, before saving the weights.
        """
        model = copy.deepcopy(self).to("cpu", torch.float64)
        quantiles = model.quantiles[:, 0, :]
        medians = quantiles[:, 1]
        below = torch.ceil(medians - quantiles[:, 0]).clamp(0, MAX_HALF_WIDTH).long()
        above = torch.ceil(quantiles[:, 2] - medians).clamp(0, MAX_HALF_WIDTH).long()
        lengths = below + above + 1
        samples = medians[:, None] - below[:, None] + torch.arange(int(lengths.max()), dtype=torch.float64)
        pmf, lower, upper = model.bin_likelihood(samples[:, None, :], stop_gradient=True)
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
        p = self.likelihood_lower_bound(self.bin_likelihood(values)[0])
        return p.reshape(y_hat.transpose(0, 1).shape).transpose(0, 1)

    def compress(self, y: Tensor, encoder: SymbolEncoder) -> Tensor:
        """Code ``round(y - median)`` of ``y`` (N, C, ...); returns ``y_hat`` (float32, CPU)."""
        medians = self._medians_like(y.dim())
        q = torch.round(y.detach().cpu().float() - medians)
        encoder.encode_with_tables(q.numpy(), self._indexes(tuple(q.shape)), self.tables)
        return q + medians

    def decompress(self, shape: tuple[int, ...], decoder: SymbolDecoder) -> Tensor:
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
        for name in _TABLE_BUFFERS:
            stored = state_dict.get(prefix + name)
            if stored is not None:
                setattr(self, name, torch.empty(stored.shape, dtype=stored.dtype, device=getattr(self, name).device))
        self._tables = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class GaussianConditionalPrior(nn.Module):
    """Gaussian conditional ``y_hat ~ N(means, scales)``: the training likelihood of the unit bin around
    ``y_hat`` (scales lower-bounded at 0.11) and exact coding of ``q = round(y - mu)`` with the shared
    Gaussian tables.

    ``means``/``scales`` given to ``compress``/``decompress`` must be float64 arrays computed on a
    deterministic path (identical on both sides); this class only codes exactly given them.
    """

    def __init__(self, scale_bound: float = SCALE_MIN) -> None:
        super().__init__()
        self.scale_lower_bound = LowerBound(scale_bound)
        self.likelihood_lower_bound = LowerBound(LIKELIHOOD_BOUND)

    def forward(
        self, y: Tensor, scales: Tensor, means: Tensor | None = None, training: bool | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(y_hat, likelihoods)``: noisy ``y`` in training, ``round(y - means) + means`` otherwise."""
        y_hat = quantize(y, means, self.training if training is None else training)
        return y_hat, self.likelihood(y_hat, scales, means)

    def likelihood(self, y_hat: Tensor, scales: Tensor, means: Tensor | None = None) -> Tensor:
        """Probability of each ``y_hat`` bin (lower-bounded like in ``forward``).

        By symmetry it is computed on the lower half-line, ``Φ((1/2 - |r|)/s) - Φ((-1/2 - |r|)/s)`` for the
        residual ``r``, where the normal cdf ``Φ(t) = erfc(-t/√2)/2`` keeps its precision in the tail.
        """
        residual = torch.abs(y_hat if means is None else y_hat - means)
        scales = self.scale_lower_bound(scales)
        p = _normal_cdf((0.5 - residual) / scales) - _normal_cdf((-0.5 - residual) / scales)
        return self.likelihood_lower_bound(p)

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


def _normal_cdf(t: Tensor) -> Tensor:
    return 0.5 * torch.erfc(-(2**-0.5) * t)


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
