"""Classical lossless image codecs for 8-bit grayscale images, one adapter each.

PNG, WebP lossless and JPEG 2000 (reversible 5/3 wavelet) go through Pillow; JPEG XL lossless through
``imagecodecs`` (libjxl), an optional dependency (``pip install neuralcodec[bench]``). Every adapter
verifies on decode that it really was lossless.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, features

from neuralcodec.errors import InputError, NeuralCodecError


@dataclass(frozen=True)
class LosslessImageCodec:
    """A lossless codec of (H, W) uint8 images."""

    name: str
    encode: Callable[[np.ndarray], bytes]
    decode: Callable[[bytes], np.ndarray]
    unavailable_reason: Callable[[], str | None]

    def available(self) -> bool:
        return self.unavailable_reason() is None

    def size_checked(self, image: np.ndarray) -> int:
        """Bytes of ``image``'s file, after checking that decoding restores it exactly."""
        if image.dtype != np.uint8 or image.ndim != 2:
            raise InputError(f"{self.name}: expected an (H, W) uint8 image, got {image.dtype} {image.shape}")
        reason = self.unavailable_reason()
        if reason:
            raise NeuralCodecError(f"{self.name} is unavailable: {reason}")
        data = self.encode(image)
        if not np.array_equal(self.decode(data), image):
            raise NeuralCodecError(f"{self.name} did not round-trip losslessly")
        return len(data)


def _pillow_codec(name: str, pil_format: str, feature: str | None, **options: object) -> LosslessImageCodec:
    def encode(image: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image, mode="L").save(buffer, format=pil_format, **options)
        return buffer.getvalue()

    def decode(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("L"), dtype=np.uint8).copy()

    def unavailable() -> str | None:
        if feature is None or features.check(feature):
            return None
        return f"Pillow {Image.__version__} lacks {feature!r}"

    return LosslessImageCodec(name, encode, decode, unavailable)


def _imagecodecs_missing() -> str | None:
    try:
        import imagecodecs
    except ImportError:
        return "imagecodecs is not installed (pip install 'neuralcodec[bench]')"
    return None if imagecodecs.JPEGXL.available else "imagecodecs was built without JPEG XL"


def _jxl_encode(image: np.ndarray) -> bytes:
    import imagecodecs

    return bytes(imagecodecs.jpegxl_encode(image, lossless=True, effort=9))


def _jxl_decode(data: bytes) -> np.ndarray:
    import imagecodecs

    return np.asarray(imagecodecs.jpegxl_decode(data), dtype=np.uint8).squeeze()


LOSSLESS_CODECS: dict[str, LosslessImageCodec] = {
    codec.name: codec
    for codec in (
        _pillow_codec("png", "PNG", None, optimize=True),
        _pillow_codec("webp-lossless", "WEBP", "webp", lossless=True, quality=100, method=6),
        _pillow_codec("jpeg2000-lossless", "JPEG2000", "jpg_2000", irreversible=False),
        LosslessImageCodec("jpegxl-lossless", _jxl_encode, _jxl_decode, _imagecodecs_missing),
    )
}
