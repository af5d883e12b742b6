"""Temporal coding of a P-frame's residual hyper-latent (files with the ``temporal_hyper_latent`` flag).

The residual coder's hyper-latent ``ẑ`` is coded by a factorized prior: one learned table per channel,
the symbol ``round(z - median)``. Across consecutive P-frames almost every symbol repeats (96-99% on the
training clips; 92-95% are the median), which the factorized prior cannot know, and at low rates ``ẑ``
is a fifth of a P-frame's bits. Here each symbol is coded with its channel's table mixed with a spike at the
previous P-frame's symbol at the same position::

    p(v) = (1 - α)·p_c(v) + α·[v = previous],   α = ZERO_SPIKE if previous = 0 else OTHER_SPIKE

Symbols outside the table's support keep the table's escape. The mixed tables are computed from the
shipped integer tables in integer arithmetic only (one row per channel and previous symbol), so encoder
and decoder build the same tables on any machine.
"""

from __future__ import annotations

import numpy as np
import torch

from neuralcodec.entropy import SymbolDecoder, SymbolEncoder
from neuralcodec.entropy.models import FactorizedPrior
from neuralcodec.entropy.tables import PRECISION, TableSet
from neuralcodec.errors import InputError

ZERO_SPIKE = 0.85
"""Probability mass moved onto the previous symbol where it is the channel's median (symbol 0)."""
OTHER_SPIKE = 0.7
"""... and where it is any other symbol. Both are maximum-likelihood fits (on a 0.05 grid) to the
hyper-latents of consecutive P-frames of training clips (the six Vimeo clips and 8 synthetic clips of
moving objects), qualities 1 and 4; they halve the hyper-latent's bits there (-51%)."""


def _mixed_row(freqs: np.ndarray, spike: int, mass: int) -> np.ndarray:
    """The integer row ``freqs`` (summing to 2**PRECISION, escape last) with ``mass`` of it moved onto
    entry ``spike``: every entry scaled by ``1 - mass / 2**PRECISION`` (rounded down, at least 1), the
    remainder added to the spike."""
    total = 1 << PRECISION
    row = np.maximum((freqs.astype(np.int64) * (total - mass)) >> PRECISION, 1)
    row[spike] += total - row.sum()
    return row


class TemporalHyperLatentTables:
    """The mixed tables of one factorized prior: rows ``first_row[c] + (v - offset_c)`` for channel ``c``
    and a previous symbol ``v`` inside the channel's support; rows ``0 .. C - 1`` are the prior's own."""

    def __init__(self, prior: FactorizedPrior) -> None:
        self.prior = prior
        own = prior.tables
        masses = [round(spike * (1 << PRECISION)) for spike in (ZERO_SPIKE, OTHER_SPIKE)]
        rows, offsets, lengths = [own.freqs], [own.offsets], [own.lengths]
        first_row, count = [], len(own)
        for channel in range(len(own)):
            length, offset = int(own.lengths[channel]), int(own.offsets[channel])
            freqs = own.freqs[channel, : length + 1]
            mixed = np.zeros((length, own.freqs.shape[1]), dtype=np.int64)
            for index in range(length):
                mixed[index, : length + 1] = _mixed_row(freqs, index, masses[0 if index + offset == 0 else 1])
            rows.append(mixed)
            offsets.append(np.full(length, offset))
            lengths.append(np.full(length, length))
            first_row.append(count)
            count += length
        self.tables = TableSet(np.concatenate(rows).astype(np.int32), np.concatenate(offsets),
                               np.concatenate(lengths))
        self._first_row = np.array(first_row, dtype=np.int64)

    def coder(self, previous: np.ndarray | None) -> TemporalHyperLatentCoder:
        """A coder of one frame's hyper-latent given the ``previous`` P-frame's symbols (None: none)."""
        return TemporalHyperLatentCoder(self, previous)

    def indexes(self, previous: np.ndarray) -> np.ndarray:
        """The row of every symbol given the previous symbols ``previous`` (N, C, ...) at its position."""
        own = self.prior.tables
        shape = (1, -1) + (1,) * (previous.ndim - 2)
        channel = np.broadcast_to(np.arange(len(own)).reshape(shape), previous.shape)
        position = previous - own.offsets[channel]
        inside = (position >= 0) & (position < own.lengths[channel])
        return np.where(inside, self._first_row[channel] + position, channel)


class TemporalHyperLatentCoder:
    """Codes one frame's hyper-latent like :meth:`FactorizedPrior.compress` / ``decompress`` (which it
    replaces in :meth:`~neuralcodec.codecs.image.codec.ImageHyperpriorCodec.encode_latent`), with the
    previous P-frame's symbols as context; afterwards ``symbols`` holds the symbols it coded."""

    def __init__(self, tables: TemporalHyperLatentTables, previous: np.ndarray | None) -> None:
        self._tables = tables
        self._previous = previous
        self.symbols: np.ndarray | None = None

    def _indexes(self, shape: tuple[int, ...]) -> np.ndarray:
        if self._previous is None:
            return self._tables.prior._indexes(shape)
        if self._previous.shape != shape:
            raise InputError(f"the previous hyper-latent has shape {self._previous.shape}, not {shape}")
        return self._tables.indexes(self._previous)

    def compress(self, z: torch.Tensor, encoder: SymbolEncoder) -> torch.Tensor:
        medians = self._tables.prior._medians_like(z.dim())
        q = torch.round(z.detach().cpu().float() - medians)
        self.symbols = q.numpy().astype(np.int64)
        encoder.encode_with_tables(self.symbols, self._indexes(tuple(q.shape)), self._tables.tables)
        return q + medians

    def decompress(self, shape: tuple[int, ...], decoder: SymbolDecoder) -> torch.Tensor:
        self.symbols = decoder.decode_with_tables(self._indexes(tuple(shape)), self._tables.tables).astype(np.int64)
        return torch.from_numpy(self.symbols).float() + self._tables.prior._medians_like(len(shape))
