"""Distortion and rate metrics: PSNR (RGB and BT.601 luma), SSIM, MS-SSIM (and in dB), bits per pixel, audio SNR.

Image inputs are either two numpy arrays laid out channels-last (``H x W x 3``, or ``H x W`` for
grey) or two torch tensors laid out channels-first (``3 x H x W`` or ``N x 3 x H x W``). The peak
value defaults from the dtype: 255 for ``uint8``, 1.0 for floating point; pass ``peak`` for
anything else.
"""

from __future__ import annotations

import math
from typing import Union

import numpy as np
import torch
from pytorch_msssim import ms_ssim as _pytorch_ms_ssim
from pytorch_msssim import ssim as _pytorch_ssim

from neuralcodec.errors import InputError

ArrayOrTensor = Union[np.ndarray, torch.Tensor]

#: BT.601 luma weights of the studio-swing RGB -> Y'CbCr transform (MATLAB ``rgb2ycbcr``), per 255.
BT601_LUMA_WEIGHTS = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)

#: MS-SSIM with its 5 scales and 11-tap window needs a smaller image side above (11 - 1) * 2**4.
MS_SSIM_MIN_SIDE = 161


def _default_peak(dtype: np.dtype) -> float:
    """The conventional peak value for an image dtype (uint8 -> 255, float -> 1.0)."""
    if dtype == np.uint8:
        return 255.0
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise InputError(f"no default peak for dtype {dtype}; pass peak= explicitly")


def _to_numpy(x: ArrayOrTensor) -> np.ndarray:
    """A numpy array of ``x`` as given; float tensors (bfloat16 included) become float64."""
    if isinstance(x, np.ndarray):
        return x
    tensor = x.detach().cpu()
    return (tensor.double() if tensor.is_floating_point() else tensor).numpy()


def _check_pair(x: ArrayOrTensor, y: ArrayOrTensor) -> None:
    """Raise InputError unless ``x`` and ``y`` are arrays or tensors of one kind, dtype and shape."""
    for value in (x, y):
        if not isinstance(value, (np.ndarray, torch.Tensor)):
            raise InputError(f"expected a numpy array or torch tensor, got {type(value).__name__}")
    if isinstance(x, torch.Tensor) != isinstance(y, torch.Tensor) or x.dtype != y.dtype:
        raise InputError(
            f"inputs differ in kind or dtype: {type(x).__name__} {x.dtype} vs {type(y).__name__} {y.dtype}"
        )
    if tuple(x.shape) != tuple(y.shape):
        raise InputError(f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    if math.prod(x.shape) == 0:
        raise InputError(f"input is empty: shape {tuple(x.shape)}")


def _channels_last(x: ArrayOrTensor) -> np.ndarray:
    """A numpy image with channels last (tensors are given channels-first)."""
    array = _to_numpy(x)
    if isinstance(x, torch.Tensor) and array.ndim >= 3:
        return np.moveaxis(array, -3, -1)
    return array


def _prepare(x: ArrayOrTensor, y: ArrayOrTensor, peak: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    """Validate a pair and return both as float64 channels-last arrays plus the peak value."""
    _check_pair(x, y)
    a, b = _channels_last(x), _channels_last(y)
    peak = _default_peak(a.dtype) if peak is None else float(peak)
    if peak <= 0:
        raise InputError(f"peak must be positive, got {peak}")
    return a.astype(np.float64), b.astype(np.float64), peak


def _psnr_from_mse(mse: float, peak: float) -> float:
    """PSNR in dB for a mean squared error; identical signals give ``inf``."""
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def psnr(x: ArrayOrTensor, y: ArrayOrTensor, peak: float | None = None) -> float:
    """PSNR in dB over all pixels and channels (one pooled MSE, also across a batch)."""
    a, b, peak = _prepare(x, y, peak)
    return _psnr_from_mse(float(np.mean((a - b) ** 2)), peak)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 studio-swing luma without its +16 offset (the offset cancels in any difference)."""
    if rgb.ndim < 3 or rgb.shape[-1] != 3:
        raise InputError(f"psnr_y needs RGB images (3 channels), got shape {rgb.shape} (channels last)")
    return rgb @ np.asarray(BT601_LUMA_WEIGHTS)


def psnr_y(x: ArrayOrTensor, y: ArrayOrTensor, peak: float | None = None) -> float:
    """PSNR in dB of the BT.601 luma channel, as in the SR / compression literature.

    Y is the studio-swing ``rgb2ycbcr`` luma (range 16..235 on a 255 scale), kept in floating
    point (no rounding to 8 bits), and compared against the same peak as the RGB input.
    """
    a, b, peak = _prepare(x, y, peak)
    return _psnr_from_mse(float(np.mean((_luma(a) - _luma(b)) ** 2)), peak)


STRUCTURAL_DTYPE = torch.float32
"""SSIM and MS-SSIM run in float32: on 48 decoded Kodak images (JPEG, WebP, HEVC, hyperprior) they stay within
3.6e-6 (SSIM) and 2.0e-6 (MS-SSIM; 0.0004 dB) of float64, a few hundredths of the last of the 4 significant
digits reports print, and take 9-13x less CPU time (``benchmarks/results/ssim-precision/``)."""


def _to_nchw(x: np.ndarray) -> torch.Tensor:
    """A :data:`STRUCTURAL_DTYPE` NCHW tensor from a channels-last array (HxW, HxWxC or NxHxWxC)."""
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise InputError(f"ms_ssim needs a 2-, 3- or 4-d image, got {x.ndim} dimensions")
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1))).to(STRUCTURAL_DTYPE)


def ms_ssim(x: ArrayOrTensor, y: ArrayOrTensor, peak: float | None = None) -> float:
    """MS-SSIM (5 scales, 11-tap Gaussian window, standard weights) averaged over channels/batch.

    Images whose smaller side is under ``MS_SSIM_MIN_SIDE`` (161 px) raise InputError instead of
    being scored on fewer scales, so every reported MS-SSIM means the same thing.
    """
    a, b, peak = _prepare(x, y, peak)
    height, width = (a.shape[0], a.shape[1]) if a.ndim <= 3 else (a.shape[1], a.shape[2])
    if min(height, width) < MS_SSIM_MIN_SIDE:
        raise InputError(
            f"ms_ssim needs both sides >= {MS_SSIM_MIN_SIDE} px (5 scales), got {height}x{width}"
        )
    return float(_pytorch_ms_ssim(_to_nchw(a), _to_nchw(b), data_range=peak))


def ssim(x: ArrayOrTensor, y: ArrayOrTensor, peak: float | None = None) -> float:
    """Single-scale SSIM (11-tap Gaussian window, sigma 1.5, K1 0.01, K2 0.03) averaged over channels/batch:
    the structural metric for images too small for MS-SSIM (both sides must be at least 11 px)."""
    a, b, peak = _prepare(x, y, peak)
    height, width = (a.shape[0], a.shape[1]) if a.ndim <= 3 else (a.shape[1], a.shape[2])
    if min(height, width) < 11:
        raise InputError(f"ssim needs both sides >= 11 px, got {height}x{width}")
    return float(_pytorch_ssim(_to_nchw(a), _to_nchw(b), data_range=peak))


def ms_ssim_db(value: float) -> float:
    """MS-SSIM on a decibel scale, ``-10 log10(1 - MS-SSIM)``, as rate-distortion plots show it (``inf`` at 1)."""
    return math.inf if value >= 1.0 else -10.0 * math.log10(1.0 - value)


def bits_per_pixel(num_bytes: int, height: int, width: int) -> float:
    """Rate in bits per pixel of ``num_bytes`` spent on a ``height x width`` image."""
    if num_bytes < 0:
        raise InputError(f"num_bytes must be >= 0, got {num_bytes}")
    if height <= 0 or width <= 0:
        raise InputError(f"image size must be positive, got {height}x{width}")
    return 8.0 * num_bytes / (height * width)


def kilobits_per_second(num_bytes: int, num_samples: int, sample_rate: int) -> float:
    """Rate in kbit/s of ``num_bytes`` spent on ``num_samples`` audio samples at ``sample_rate`` Hz."""
    if num_bytes < 0:
        raise InputError(f"num_bytes must be >= 0, got {num_bytes}")
    if num_samples <= 0 or sample_rate <= 0:
        raise InputError(f"audio length and sample rate must be positive, got {num_samples} at {sample_rate} Hz")
    return 8.0 * num_bytes * sample_rate / num_samples / 1000.0


def snr_db(reference: ArrayOrTensor, estimate: ArrayOrTensor) -> float:
    """Signal-to-noise ratio in dB of an audio estimate: 10 log10(|ref|^2 / |ref - est|^2).

    Identical signals give ``inf``; a silent reference with any error gives ``-inf``.
    """
    _check_pair(reference, estimate)
    ref = _to_numpy(reference).astype(np.float64)
    noise = float(np.sum((ref - _to_numpy(estimate).astype(np.float64)) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)
