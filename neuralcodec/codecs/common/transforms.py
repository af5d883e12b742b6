"""Convolutional analysis/synthesis transforms shared by the image and video codecs.

Layouts follow Ballé et al. 2018 (GDN transforms, 5x5 stride-2 convolutions) and the mean-scale
hyper-synthesis of Minnen et al. 2018. Every transform here downsamples or upsamples by a power of two;
``ANALYSIS_STRIDE`` and ``HYPER_STRIDE`` say by how much, so callers know what to pad inputs to.
The hyper transforms come in the layouts of :data:`HYPER_LAYOUTS`; the module indexes of their
convolutions are CompressAI's (after the leading ``|y|`` of the ``bmshj2018`` hyper-analysis).
"""

from __future__ import annotations

import torch
from torch import nn

from neuralcodec.errors import InputError

from neuralcodec.codecs.common.gdn import GDN

ANALYSIS_STRIDE = 16
"""Spatial downsampling of :func:`analysis_transform` (four stride-2 convolutions)."""

HYPER_STRIDE = 4
"""Extra downsampling of :func:`hyper_analysis` on top of the analysis transform."""

HYPER_LAYOUTS = ("ramp", "bmshj2018", "mbt2018")
"""Layouts of the hyper transforms. ``ramp`` (this project's): LeakyReLU, the hyper-synthesis widening
from n to its output in two equal steps. ``bmshj2018`` (CompressAI's ``bmshj2018-hyperprior``): the
hyper-analysis sees ``|y|``, ReLU, width n throughout, a ReLU on the output (scales). ``mbt2018``
(CompressAI's ``mbt2018-mean``): LeakyReLU, hyper-synthesis widths out/2 and 3·out/4 (M and 3M/2)."""


def _conv(in_ch: int, out_ch: int, kernel: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2)


def _deconv(in_ch: int, out_ch: int, kernel: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(
        in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, output_padding=stride - 1
    )


def analysis_transform(in_ch: int, n: int, m: int) -> nn.Sequential:
    """g_a: image (in_ch, H, W) -> latent (m, H/16, W/16)."""
    return nn.Sequential(
        _conv(in_ch, n), GDN(n), _conv(n, n), GDN(n), _conv(n, n), GDN(n), _conv(n, m)
    )


def synthesis_transform(m: int, n: int, out_ch: int) -> nn.Sequential:
    """g_s: latent (m, h, w) -> image (out_ch, 16h, 16w)."""
    return nn.Sequential(
        _deconv(m, n), GDN(n, inverse=True), _deconv(n, n), GDN(n, inverse=True),
        _deconv(n, n), GDN(n, inverse=True), _deconv(n, out_ch),
    )


class Magnitude(nn.Module):
    """``|x|``: the input of the ``bmshj2018`` hyper-analysis."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.abs(x)


def check_hyper_layout(layout: str) -> str:
    """``layout`` when it is one of :data:`HYPER_LAYOUTS` (InputError otherwise: it comes from weights files)."""
    if layout not in HYPER_LAYOUTS:
        raise InputError(f"unknown hyper-transform layout {layout!r} (known: {', '.join(HYPER_LAYOUTS)})")
    return layout


def _activation(layout: str) -> nn.Module:
    return nn.ReLU(inplace=True) if layout == "bmshj2018" else nn.LeakyReLU(inplace=True)


def hyper_analysis(m: int, n: int, layout: str = "ramp") -> nn.Sequential:
    """h_a: latent (m, h, w) -> hyper-latent (n, h/4, w/4), in one of the :data:`HYPER_LAYOUTS`."""
    magnitude = [Magnitude()] if check_hyper_layout(layout) == "bmshj2018" else []
    return nn.Sequential(
        *magnitude, _conv(m, n, kernel=3, stride=1), _activation(layout),
        _conv(n, n), _activation(layout), _conv(n, n),
    )


def hyper_synthesis(n: int, out_ch: int, layout: str = "ramp") -> nn.Sequential:
    """h_s: hyper-latent (n, h, w) -> entropy parameters (out_ch, 4h, 4w), in one of the :data:`HYPER_LAYOUTS`.

    For the mean-scale model ``out_ch`` is ``2*M`` (means and scales).
    """
    first, second = {"ramp": (n, (n + out_ch) // 2), "bmshj2018": (n, n),
                     "mbt2018": (out_ch // 2, 3 * out_ch // 4)}[check_hyper_layout(layout)]
    output = [nn.ReLU(inplace=True)] if layout == "bmshj2018" else []
    return nn.Sequential(
        _deconv(n, first), _activation(layout),
        _deconv(first, second), _activation(layout),
        _conv(second, out_ch, kernel=3, stride=1), *output,
    )
