"""Images given as arrays (numpy; torch tensors arrive here as numpy), checked and made Pillow images.

The codecs are 8-bit, as for files: integer arrays must hold 0..255, float arrays [0, 1] (rounded to
8 bits). 1 channel is grayscale, 3 RGB, 4 RGBA (the alpha plane is kept exactly, as for files).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from neuralcodec.errors import InputError

MODES = {1: "L", 3: "RGB", 4: "RGBA"}
"""Pillow mode of each accepted channel count."""


def image_from_array(array: np.ndarray, channels_first: bool) -> Image.Image:
    """One image, (H, W) or (H, W, C) — (C, H, W) when ``channels_first`` — as a Pillow image."""
    layout = "(C, H, W)" if channels_first else "(H, W, C)"
    if array.ndim == 2:
        array = array[None] if channels_first else array[..., None]
    if array.ndim != 3:
        raise InputError(f"expected one image of shape {layout} or (H, W), got shape {tuple(array.shape)}")
    channels = array.shape[0] if channels_first else array.shape[-1]
    if channels not in MODES:
        other = array.shape[-1] if channels_first else array.shape[0]
        hint = f" (is it {'(H, W, C)' if channels_first else '(C, H, W)'}? transpose it)" if other in MODES else ""
        raise InputError(f"expected {layout} with 1 (grey), 3 (RGB) or 4 (RGBA) channels, got shape "
                         f"{tuple(array.shape)}{hint}")
    if array.size == 0:
        raise InputError(f"the image is empty (shape {tuple(array.shape)})")
    pixels = to_uint8(array)
    pixels = np.moveaxis(pixels, 0, -1) if channels_first else pixels
    return Image.fromarray(np.ascontiguousarray(pixels[..., 0] if channels == 1 else pixels), mode=MODES[channels])


def to_uint8(array: np.ndarray) -> np.ndarray:
    """8-bit pixels of integer values in 0..255 or float values in [0, 1]; InputError for anything else."""
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InputError(f"pixels must be uint8 (0-255) or float (0-1), got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise InputError(f"integer pixels must be in 0..255, got values from {low} to {high}")
        return array.astype(np.uint8)
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise InputError("the image holds NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if high > 1.0 and high <= 255.0 and low >= 0.0:
        raise InputError(f"float pixels must be in [0, 1], got values up to {high:g}: for 0-255 values divide by "
                         f"255 or pass uint8")
    if low < 0.0 or high > 1.0:
        raise InputError(f"float pixels must be in [0, 1], got values from {low:g} to {high:g}")
    return np.round(values * 255.0).astype(np.uint8)
