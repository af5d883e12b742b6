"""One coding round trip of one sample through one codec adapter, and its rate and distortion.

Images: rate in bits per pixel, RGB PSNR, BT.601 luma PSNR, SSIM, and MS-SSIM where both sides reach
161 px. Grey images go to codecs that code grey planes as they are; a codec that only takes RGB (the
learned ones) gets the grey plane in all three channels and its output is averaged back to grey.
Audio: rate in kbit/s and SNR.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuralcodec.errors import InputError
from neuralcodec.metrics import (
    MS_SSIM_MIN_SIDE, bits_per_pixel, kilobits_per_second, ms_ssim, psnr, psnr_y, snr_db, ssim,
)

IMAGE_METRICS = ("bpp", "psnr", "psnr_y", "ssim", "ms_ssim")
AUDIO_METRICS = ("kbps", "snr")


def _codec_input(adapter: Any, image: np.ndarray) -> np.ndarray:
    if image.ndim == 2 and not getattr(adapter, "accepts_gray", False):
        return np.repeat(image[..., None], 3, axis=2)
    return image


def _like_original(decoded: np.ndarray, original: np.ndarray) -> np.ndarray:
    """``decoded`` with the original's channel layout (RGB output of a grey input averaged to grey)."""
    if original.ndim == 2 and decoded.ndim == 3:
        decoded = np.round(decoded.astype(np.float32).mean(axis=2)).astype(np.uint8)
    return decoded


def measure_image(adapter: Any, image: np.ndarray, quality: float) -> tuple[dict[str, Any], np.ndarray]:
    """(``{"bytes", "bpp", "psnr", "psnr_y", "ssim", "ms_ssim"}``, decoded image); ``psnr_y`` is None for
    grey images and ``ms_ssim`` None for images under 161 px."""
    data = adapter.encode(_codec_input(adapter, image), quality)
    decoded = _like_original(adapter.decode(data), image)
    if decoded.shape != image.shape:
        raise InputError(f"{adapter.name} decoded a {decoded.shape} image from a {image.shape} one")
    height, width = image.shape[:2]
    return {"bytes": len(data), "bpp": bits_per_pixel(len(data), height, width), "psnr": psnr(image, decoded),
            "psnr_y": psnr_y(image, decoded) if image.ndim == 3 else None, "ssim": ssim(image, decoded),
            "ms_ssim": ms_ssim(image, decoded) if min(height, width) >= MS_SSIM_MIN_SIDE else None}, decoded


def measure_audio(adapter: Any, wave: np.ndarray, sample_rate: int, quality: float) -> tuple[dict[str, Any], np.ndarray]:
    """(``{"bytes", "kbps", "snr"}``, decoded waveform at the original rate and length)."""
    data = adapter.encode(wave, sample_rate, quality)
    decoded, rate = adapter.decode(data)
    if rate != sample_rate or decoded.shape != wave.shape:
        raise InputError(f"{adapter.name} decoded {decoded.shape} at {rate} Hz from {wave.shape} at {sample_rate} Hz")
    return {"bytes": len(data), "kbps": kilobits_per_second(len(data), len(wave), sample_rate),
            "snr": snr_db(wave, decoded)}, decoded
