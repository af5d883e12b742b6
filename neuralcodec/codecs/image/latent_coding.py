"""How the image codec codes its gained latent ``y`` once the hyperprior's parameters are known.

Two coders, one interface: :class:`HyperpriorLatents` (every residual with the hyperprior's own mean and
scale, one pass) and :class:`ContextLatents` (the spatial-channel context model of
:mod:`neuralcodec.codecs.image.context`: channel groups one after the other, each in two checkerboard
passes). Both get the hyperprior's means and scales in float64 on the CPU and keep every quantity a
decoder rebuilds on that path (the context networks too); means are snapped to the 1/``MEAN_GRID``
grid, and the CRC32 of the scale indexes (in coding order) is returned for the file.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch

from neuralcodec.codecs.common.determinism import scale_index_crc, snap_means
from neuralcodec.codecs.image.context import ImageContextModel, gather
from neuralcodec.entropy import SymbolDecoder, SymbolEncoder
from neuralcodec.entropy.models import GaussianConditionalPrior

ScaleCheck = Callable[[np.ndarray], None]
"""Raises when scale indexes rebuilt by a decoder are not the encoder's (see ``check_index_crc``)."""
PassCoder = Callable[[slice, torch.Tensor | None, np.ndarray, np.ndarray], torch.Tensor]
"""Codes one pass: (group channels, flat positions or None for all, snapped means, scales; flattened
position-major) -> the decoded values there, in the same order."""


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
        check(scales)
        return self.conditional.decompress(snap_means(means), scales, decoder)


class ContextLatents:
    """Channel groups in order, each in one or two (checkerboard) passes, with the context networks in
    float64 on the CPU."""

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

        y_hat, scale_rows = self._run(means, scales, level, code)
        return y_hat, scale_index_crc(scale_rows)

    def decompress(self, means: torch.Tensor, scales: torch.Tensor, level: float, decoder: SymbolDecoder,
                   check: ScaleCheck) -> torch.Tensor:
        def code(group: slice, positions: torch.Tensor | None, mu: np.ndarray, sigma: np.ndarray) -> torch.Tensor:
            return self.conditional.decompress(mu, sigma, decoder)

        y_hat, scale_rows = self._run(means, scales, level, code)
        check(scale_rows)
        return y_hat

    @torch.no_grad()
    def _run(self, means: torch.Tensor, scales: torch.Tensor, level: float, code: PassCoder) -> tuple[torch.Tensor, np.ndarray]:
        """Every pass in coding order; returns ŷ (float32, the latent's channel order) and the scales of
        all coded positions in coding order."""
        context = self.context
        ones = torch.ones(1, self.channels, 1, 1, dtype=torch.float64)
        gain = context.permuted(self.latent_gain.scale(ones, torch.tensor([level], dtype=torch.float64)))
        means, scales = context.permuted(means), context.permuted(scales)
        _, _, height, width = means.shape
        features, embedding = context.hyper_features(means, scales, gain)
        y_hat = torch.zeros_like(means)
        rows = []
        for index, group in enumerate(context.config.slices()):
            g_k = gain[:, group]
            inputs = context.group_inputs(index, features, embedding, y_hat[:, :group.start] / gain[:, :group.start])
            group_hat = torch.zeros(1, group.stop - group.start, height * width, dtype=torch.float64)
            for step, positions in enumerate(context.passes(height, width)):
                anchors = group_hat.view(1, -1, height, width) / g_k if step else None
                mu, sigma = context.group_parameters(index, inputs, anchors, means[:, group], scales[:, group], g_k,
                                                     positions)
                sigma = sigma.numpy().ravel()
                values = code(group, positions, snap_means(mu).ravel(), sigma).double().reshape(mu.shape).transpose(1, 2)
                group_hat = group_hat.index_copy(2, positions, values) if positions is not None else values
                rows.append(sigma)
            y_hat[:, group] = group_hat.view(1, -1, height, width)
        return context.unpermuted(y_hat).float(), np.concatenate(rows)
