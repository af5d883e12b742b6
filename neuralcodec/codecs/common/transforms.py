"""Convolutional analysis/synthesis transforms shared by the image and video codecs.

Layouts follow Ballé et al. 2018 (GDN transforms, 5x5 stride-2 convolutions) and the mean-scale
hyper-synthesis of Minnen et al. 2018. Every transform here downsamples or upsamples by a power of two;
``ANALYSIS_STRIDE`` and ``HYPER_STRIDE`` say by how much, so callers know what to pad inputs to.
"""

from __future__ import annotations

from torch import nn

from neuralcodec.codecs.common.gdn import GDN

ANALYSIS_STRIDE = 16
"""Spatial downsampling of :func:`analysis_transform` (four stride-2 convolutions)."""

HYPER_STRIDE = 4
"""Extra downsampling of :func:`hyper_analysis` on top of the analysis transform."""


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


def hyper_analysis(m: int, n: int) -> nn.Sequential:
    """h_a: latent (m, h, w) -> hyper-latent (n, h/4, w/4)."""
    return nn.Sequential(
        _conv(m, n, kernel=3, stride=1), nn.LeakyReLU(inplace=True),
        _conv(n, n), nn.LeakyReLU(inplace=True), _conv(n, n),
    )


def hyper_synthesis(n: int, out_ch: int) -> nn.Sequential:
    """h_s: hyper-latent (n, h, w) -> entropy parameters (out_ch, 4h, 4w).

    For the mean-scale model ``out_ch`` is ``2*M`` (means and scales); the width ramps from n to out_ch
    as in Minnen et al. 2018.
    """
    mid = (n + out_ch) // 2
    return nn.Sequential(
        _deconv(n, n), nn.LeakyReLU(inplace=True),
        _deconv(n, mid), nn.LeakyReLU(inplace=True),
        _conv(mid, out_ch, kernel=3, stride=1),
    )
