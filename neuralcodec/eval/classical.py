"""Classical image codecs (JPEG, WebP, AVIF, JPEG 2000) behind one adapter, all through Pillow.

Every adapter takes an ``H x W x 3`` uint8 RGB image (or ``H x W`` grey: JPEG and JPEG 2000 code one
plane, WebP and AVIF code it as colour and decode to RGB) and one knob value where larger means more
bits and higher quality. Each ``qualities`` sweep was set to span about 0.05-2 bpp in 10-12
points on Kodak ``kodim23``; busier photos shift every sweep upwards (``kodim13``: ~0.1-5 bpp).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError, features

from neuralcodec.errors import InputError, NeuralCodecError

SaveOptions = Callable[[float, int], dict[str, object]]
"""Pillow save options from (knob value, number of channels)."""


@dataclass(frozen=True)
class ClassicalImageCodec:
    """A Pillow-backed lossy image codec driven by one knob (``quality``)."""

    name: str
    pil_format: str
    accepts_gray = True
    pil_feature: str
    knob: str
    """What the knob is, as reports label it."""
    knob_range: tuple[float, float]
    qualities: tuple[float, ...]
    save_options: SaveOptions

    def unavailable_reason(self) -> str | None:
        """Why this codec cannot run with the installed Pillow, or None when it can."""
        if features.check(self.pil_feature):
            return None
        return f"Pillow {Image.__version__} was built without {self.pil_feature!r} support"

    def available(self) -> bool:
        """Whether the installed Pillow can encode and decode this format."""
        return self.unavailable_reason() is None

    def check_quality(self, quality: float) -> None:
        """Raise InputError unless ``quality`` is a value of this codec's knob."""
        low, high = self.knob_range
        if not low <= quality <= high:
            raise InputError(f"{self.name} {self.knob} must be in [{low:g}, {high:g}], got {quality:g}")

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        """Compress an ``H x W x 3`` (or ``H x W`` grey) uint8 image at knob value ``quality``."""
        self._require_available()
        check_image_uint8(image)
        self.check_quality(quality)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format=self.pil_format, **self.save_options(quality, 1 if image.ndim == 2 else 3))
        return buffer.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        """Decompress bytes made by :meth:`encode`: ``H x W`` for a grey stream, else ``H x W x 3`` uint8."""
        self._require_available()
        try:
            with Image.open(io.BytesIO(data), formats=[self.pil_format]) as image:
                return np.asarray(image.convert("L" if image.mode == "L" else "RGB"), dtype=np.uint8).copy()
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise InputError(f"not a decodable {self.name} stream: {error}") from error

    def _require_available(self) -> None:
        """Raise NeuralCodecError when Pillow lacks this codec."""
        reason = self.unavailable_reason()
        if reason is not None:
            raise NeuralCodecError(f"{self.name} is unavailable: {reason}")


def check_image_uint8(image: np.ndarray) -> None:
    """Raise InputError unless ``image`` is a non-empty ``H x W x 3`` or ``H x W`` uint8 array."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        found = getattr(image, "dtype", type(image).__name__)
        raise InputError(f"expected a uint8 numpy image, got {found}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3) or 0 in image.shape:
        raise InputError(f"expected an H x W x 3 or H x W image, got shape {image.shape}")


def _jpeg_options(quality: float, channels: int) -> dict[str, object]:
    """Baseline JPEG, 4:2:0 chroma, optimized Huffman tables."""
    return {"quality": int(quality), "subsampling": "4:2:0", "optimize": True}


def _webp_options(quality: float, channels: int) -> dict[str, object]:
    """Lossy WebP at the slowest, best method."""
    return {"quality": float(quality), "lossless": False, "method": 6}


def _avif_options(quality: float, channels: int) -> dict[str, object]:
    """AVIF at encoder speed 4 with 4:2:0 chroma."""
    return {"quality": int(quality), "speed": 4, "subsampling": "4:2:0"}


def _jpeg2000_options(bits_per_pixel: float, channels: int) -> dict[str, object]:
    """A raw JPEG 2000 codestream (9/7 wavelet, colour transform) at a target rate in bpp.

    OpenJPEG's "rates" mode takes a compression ratio against the raw 8 bits per sample (24 per RGB pixel).
    """
    return {
        "quality_mode": "rates",
        "quality_layers": [8.0 * channels / bits_per_pixel],
        "irreversible": True,
        "mct": 1 if channels == 3 else 0,
        "no_jp2": True,
    }


JPEG = ClassicalImageCodec(
    name="jpeg",
    pil_format="JPEG",
    pil_feature="jpg",
    knob="quality",
    knob_range=(1, 95),
    qualities=(1, 5, 8, 12, 20, 30, 45, 60, 75, 85, 92, 95),
    save_options=_jpeg_options,
)
WEBP = ClassicalImageCodec(
    name="webp",
    pil_format="WEBP",
    pil_feature="webp",
    knob="quality",
    knob_range=(0, 100),
    qualities=(0, 5, 10, 25, 45, 65, 75, 82, 88, 93, 97),
    save_options=_webp_options,
)
AVIF = ClassicalImageCodec(
    name="avif",
    pil_format="AVIF",
    pil_feature="avif",
    knob="quality",
    knob_range=(0, 100),
    qualities=(0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 94),
    save_options=_avif_options,
)
JPEG2000 = ClassicalImageCodec(
    name="jpeg2000",
    pil_format="JPEG2000",
    pil_feature="jpg_2000",
    knob="target bpp",
    knob_range=(0.01, 8.0),
    qualities=(0.05, 0.08, 0.12, 0.18, 0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0),
    save_options=_jpeg2000_options,
)

#: Every classical adapter by name.
CLASSICAL_CODECS: dict[str, ClassicalImageCodec] = {c.name: c for c in (JPEG, WEBP, AVIF, JPEG2000)}


def get_classical(name: str) -> ClassicalImageCodec:
    """The classical adapter called ``name``; InputError names the known ones otherwise."""
    try:
        return CLASSICAL_CODECS[name]
    except KeyError:
        known = ", ".join(sorted(CLASSICAL_CODECS))
        raise InputError(f"unknown classical codec {name!r}; known: {known}") from None
