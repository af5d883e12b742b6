"""How the image codec codes its gained latent ``y`` once the hyperprior's parameters are known.

Two coders, one interface: :class:`HyperpriorLatents` (every residual with the hyperprior's own mean and
scale, one pass) and :class:`ContextLatents` (the spatial-channel context model of
:mod:`neuralcodec.codecs.image.context`: channel groups one after the other, each in two checkerboard
passes). Both get the hyperprior's means and scales in float64 on the CPU and keep every quantity a
decoder rebuilds on that path (the context networks too); means are snapped to the 1/``MEAN_GRID``
grid, and the CRC32 of the scale indexes (in coding order) is returned for the file.

Cropped latents: images are padded to the transforms' multiple, and the latent positions that lie wholly
in the padding cover no pixel of the picture (31% of the latent positions of a 176x144 frame padded to
192x192). Files that say so (``cropped_latent``) code only the latent rows and columns over the picture
(:func:`picture_extent`); a decoder sets the others to the snapped hyperprior means, the value a zero
residual decodes to (:func:`filled_beyond`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch

from neuralcodec.codecs.common.determinism import scale_index_crc, snap_means
from neuralcodec.codecs.common.transforms import ANALYSIS_STRIDE
from neuralcodec.codecs.image.context import ImageContextModel, SpatialChannelContext, gather
from neuralcodec.codecs.image.model import padded_side
from neuralcodec.entropy import SymbolDecoder, SymbolEncoder
from neuralcodec.entropy.models import GaussianConditionalPrior

ScaleCheck = Callable[[int], None]
"""Raises when the CRC32 of the scale indexes a decoder rebuilt is not the encoder's (see ``check_index_crc``)."""
PassCoder = Callable[[slice, torch.Tensor | None, np.ndarray, np.ndarray], torch.Tensor]
"""Codes one pass: (group channels, flat positions or None for all, snapped means, scales; flattened
position-major) -> the decoded values there, in the same order."""


def picture_extent(height: int, width: int) -> tuple[int, int]:
    """(rows, columns) of the latent positions over a ``height`` x ``width`` picture (the top-left block of
    the padded latent; the positions beyond it only see padding)."""
    return -(-height // ANALYSIS_STRIDE), -(-width // ANALYSIS_STRIDE)


def crops_latent(height: int, width: int) -> bool:
    """Whether the padded latent of a ``height`` x ``width`` picture has positions beyond the picture (what
    a cropped-latent file leaves out)."""
    return picture_extent(height, width) != (padded_side(height) // ANALYSIS_STRIDE, padded_side(width) // ANALYSIS_STRIDE)


def over_picture(latent: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The part (..., rows, columns) of a padded latent-grid tensor over a ``height`` x ``width`` picture."""
    rows, columns = picture_extent(height, width)
    return latent[..., :rows, :columns].contiguous()


def filled_beyond(inside: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """The whole decoded latent (float32) of a cropped-latent coding: the decoded ``inside`` block
    (1, M, rows, columns) at the top left, the snapped ``means`` (1, M, h, w; float64) elsewhere."""
    full = torch.from_numpy(snap_means(means)).float()
    full[..., :inside.shape[-2], :inside.shape[-1]] = inside
    return full


class LatentCoder(Protocol):
    def compress(self, y: torch.Tensor, means: torch.Tensor, scales: torch.Tensor, level: float,
                 encoder: SymbolEncoder) -> tuple[torch.Tensor, int]:
        """Code ``y`` (1, M, h, w); returns the decoded latent (float32, CPU) and the index CRC."""

    def decompress(self, means: torch.Tensor, scales: torch.Tensor, level: float, decoder: SymbolDecoder,
                   check: ScaleCheck) -> torch.Tensor:
        """Inverse of :meth:`compress`; ``check`` sees the rebuilt scales."""


class HyperpriorLatents:
    """Every residual ``round(y - μ)`` with the hyperprior's mean and scale (the original image codec)."""

    def __init__(self, conditional: GaussianConditionalPrior) -> None:
        self.conditional = conditional

    def compress(self, y: torch.Tensor, means: torch.Tensor, scales: torch.Tensor, level: float,
                 encoder: SymbolEncoder) -> tuple[torch.Tensor, int]:
        scales = scales.numpy()
        return self.conditional.compress(y, snap_means(means), scales, encoder), scale_index_crc(scales)

    def decompress(self, means: torch.Tensor, scales: torch.Tensor, level: float, decoder: SymbolDecoder,
                   check: ScaleCheck) -> torch.Tensor:
        scales = scales.numpy()
        check(scale_index_crc(scales))
        return self.conditional.decompress(snap_means(means), scales, decoder)


BAND_POSITIONS = 1 << 13
"""The context networks run on bands of latent rows of about this many positions (a latent up to this
size, about 2 Mpixel, is one band): the temporaries of each network evaluation stay bounded whatever the
image size. What each band keeps between passes (its hyperprior features, the current group's inputs)
is of the order of the hyperprior's float64 means and scales, which the coder holds anyway."""
BAND_HALO = 3
"""Latent rows of context above and below a band; the networks' receptive field (5x5 spatial context) needs 2."""


class ContextLatents:
    """Channel groups in order, each in one or two (checkerboard) passes, with the context networks in
    float64 on the CPU, band by band (each pass is still coded as one run of symbols)."""

    def __init__(self, model: ImageContextModel) -> None:
        self.conditional = model.image.gaussian_conditional
        self.context = copy.deepcopy(model.context).cpu().double().eval()
        self.latent_gain = copy.deepcopy(model.image.latent_gain).cpu().double().eval()
        self.channels = model.config.image.m

    def compress(self, y: torch.Tensor, means: torch.Tensor, scales: torch.Tensor, level: float,
                 encoder: SymbolEncoder) -> tuple[torch.Tensor, int]:
        y64 = self.context.permuted(y.detach().cpu().double())

        def code(group: slice, positions: torch.Tensor | None, mu: np.ndarray, sigma: np.ndarray) -> torch.Tensor:
            return self.conditional.compress(gather(y64[:, group], positions).numpy().ravel(), mu, sigma, encoder)

        return self._run(means, scales, level, code)

    def decompress(self, means: torch.Tensor, scales: torch.Tensor, level: float, decoder: SymbolDecoder,
                   check: ScaleCheck) -> torch.Tensor:
        def code(group: slice, positions: torch.Tensor | None, mu: np.ndarray, sigma: np.ndarray) -> torch.Tensor:
            return self.conditional.decompress(mu, sigma, decoder)

        y_hat, index_crc = self._run(means, scales, level, code)
        check(index_crc)
        return y_hat

    @torch.no_grad()
    def _run(self, means: torch.Tensor, scales: torch.Tensor, level: float, code: PassCoder) -> tuple[torch.Tensor, int]:
        """Every pass in coding order; returns ŷ (float32, the latent's channel order) and the CRC32 of the
        scale indexes of all coded positions in coding order."""
        context = self.context
        ones = torch.ones(1, self.channels, 1, 1, dtype=torch.float64)
        gain = context.permuted(self.latent_gain.scale(ones, torch.tensor([level], dtype=torch.float64)))
        _, _, height, width = means.shape
        y_hat = torch.zeros(1, self.channels, height, width, dtype=torch.float64)  # coding order of channels
        bands = [_Band(band, height, width, means, scales, context, gain) for band in _bands(height, width)]
        index_crc = 0
        for index, group in enumerate(context.config.slices()):
            for band in bands:  # what both passes of the group see: computed once
                band.group_inputs(index, group, y_hat, gain)
            for step, positions in enumerate(context.passes(height, width)):
                mus, sigmas = zip(*(band.parameters(index, group, step, positions, y_hat, gain) for band in bands))
                mu, sigma = snap_means(torch.cat(mus, dim=1)).ravel(), torch.cat(sigmas, dim=1).numpy().ravel()
                values = code(group, positions, mu, sigma).double().reshape(-1, group.stop - group.start).T[None]
                flat = y_hat[:, group].view(1, group.stop - group.start, height * width)
                if positions is None:
                    flat.copy_(values)
                else:
                    flat.index_copy_(2, positions, values)
                index_crc = scale_index_crc(sigma, index_crc)
        return context.unpermuted(y_hat).float(), index_crc


class _Band:
    """The latent rows ``rows`` (a band, with ``BAND_HALO`` rows of context above and below) on which the
    context networks run: the hyperprior's parameters and features there are computed once, and each
    group's inputs once for both of its passes."""

    def __init__(self, rows: range, height: int, width: int, means: torch.Tensor, scales: torch.Tensor,
                 context: SpatialChannelContext, gain: torch.Tensor) -> None:
        self.rows, self.width, self.context = rows, width, context
        self.halo = slice(max(0, rows.start - BAND_HALO), min(height, rows.stop + BAND_HALO))
        self.means, self.scales = context.permuted(means[:, :, self.halo]), context.permuted(scales[:, :, self.halo])
        self.features, self.embedding = context.hyper_features(self.means, self.scales, gain)
        self.inputs: torch.Tensor | None = None

    def group_inputs(self, index: int, group: slice, y_hat: torch.Tensor, gain: torch.Tensor) -> None:
        """Compute the inputs of group ``index`` (its ``group`` of channels) from ``y_hat`` (decoded so far,
        coding order, zeros elsewhere)."""
        decoded = y_hat[:, :group.start, self.halo] / gain[:, :group.start] if index else None
        self.inputs = self.context.group_inputs(index, self.features, self.embedding, decoded)

    def parameters(self, index: int, group: slice, step: int, positions: torch.Tensor | None, y_hat: torch.Tensor,
                   gain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, σ) (1, P, c) of group ``index`` (its ``group`` of channels) in pass ``step`` at those of the
        ``positions`` in this band."""
        rows, width = self.rows, self.width
        anchors = y_hat[:, group, self.halo] / gain[:, group] if step else None
        if positions is None:
            local = torch.arange((rows.start - self.halo.start) * width, (rows.stop - self.halo.start) * width)
        else:
            first, last = (int(torch.searchsorted(positions, row * width)) for row in (rows.start, rows.stop))
            local = positions[first:last] - self.halo.start * width
        return self.context.group_parameters(index, self.inputs, anchors, self.means[:, group], self.scales[:, group],
                                             gain[:, group], local)


def _bands(height: int, width: int) -> list[range]:
    """Latent rows in bands of about ``BAND_POSITIONS`` positions (at least one row each), top to bottom."""
    rows = max(1, BAND_POSITIONS // max(1, width))
    return [range(top, min(height, top + rows)) for top in range(0, height, rows)]
