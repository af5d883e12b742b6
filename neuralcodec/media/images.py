"""Reading and writing image files (Pillow): the one image reader and suffix table of the package.

Policy, applied deliberately and recorded in the .ncd metadata so decoding restores the same layout:
- EXIF orientation is applied before coding (the decoded file is upright, with no EXIF tag).
- Grayscale (L, 1, I, I;16, F) is coded as RGB with three equal channels and decoded back to 8-bit
  grayscale; 16-bit and float inputs are reduced to 8 bits (the codec is 8-bit).
- Alpha (RGBA, LA, PA, palette transparency) is kept exactly: the colour is coded lossily, the alpha
  plane losslessly (PNG-compressed, in its own section, counted in the file size).
- Palette and CMYK/YCbCr/LAB images are converted to RGB.
Sizes are checked from the header before any pixel is decoded, so a huge declared size fails fast.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from neuralcodec.errors import CorruptFileError, InputError, LimitExceededError
from neuralcodec.fileio import atomic_output
from neuralcodec.limits import DEFAULT_MAX_PIXELS, Limits

GRAYSCALE_MODES = {"1", "L", "I", "I;16", "I;16B", "I;16L", "F"}
LOSSLESS_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")
"""Lossless image formats: read from folders of frames or digits, written by lossless decoders."""
IMAGE_SUFFIXES = (*LOSSLESS_SUFFIXES, ".jpg", ".jpeg", ".webp")
"""Every image format the codecs, training and evaluation read."""


@dataclass
class DecodedImage:
    """An image ready for coding: (H, W, 3) uint8 colour plus what must be restored at decode."""

    rgb: np.ndarray
    grayscale: bool
    alpha: np.ndarray | None

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode ``path`` following the module's policy; InputError / LimitExceededError when unusable."""
    with opened_image(path, max_pixels) as image:
        image.load()
        return _normalize(ImageOps.exif_transpose(image))


def from_pil(image: Image.Image, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """A Pillow image given in memory, under the same policy as a file read by :func:`read_image`."""
    _check_size("the image", image.size, max_pixels)
    try:
        image.load()
        return _normalize(ImageOps.exif_transpose(image))
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(f"the image cannot be decoded: {error}") from error


@contextlib.contextmanager
def opened_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[Image.Image]:
    """``path`` opened with Pillow after checking its declared size; Pillow's errors (also while the
    caller decodes it) become InputError / LimitExceededError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input image not found: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                _check_size(path, image.size, max_pixels)
                yield image
    except Image.DecompressionBombError as error:
        raise LimitExceededError(f"{path}: {error} (Pillow's own cap, above this library's --max-pixels default)") from error
    except UnidentifiedImageError as error:
        raise InputError(f"{path} is not an image Pillow can read (PNG, JPEG, WebP, BMP, TIFF...)") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(f"{path} is truncated or corrupt: {error}") from error


def _check_size(path: str | Path, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise InputError(f"{path} has an empty size {width}x{height}")
    if width * height > max_pixels:
        raise Limits(max_pixels=max_pixels).exceeded(f"{path}: {width}x{height}", width * height, "max_pixels")


def _normalize(image: Image.Image) -> DecodedImage:
    alpha = None
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = np.asarray(image.getchannel("A"), dtype=np.uint8).copy()
    grayscale = image.mode in GRAYSCALE_MODES or image.mode in ("LA", "La")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        image = _to_8bit(image)
    rgb = np.array(image.convert("L").convert("RGB") if grayscale else image.convert("RGB"), dtype=np.uint8)
    return DecodedImage(rgb=rgb, grayscale=grayscale, alpha=alpha)


def _to_8bit(image: Image.Image) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)
    peak = 65535.0 if image.mode.startswith("I") and values.max(initial=0) > 255 else 255.0
    if image.mode == "F":
        peak = max(1.0, float(values.max(initial=1.0)))
    return Image.fromarray(np.clip(np.round(values * 255.0 / peak), 0, 255).astype(np.uint8), mode="L")


def encode_alpha(alpha: np.ndarray) -> bytes:
    """Lossless PNG bytes of an alpha plane."""
    buffer = io.BytesIO()
    Image.fromarray(alpha, mode="L").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def decode_alpha(data: bytes, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`encode_alpha`: CorruptFileError unless ``data`` is an 8-bit grey PNG of exactly
    ``width`` x ``height``, checked from its header before any pixel is decompressed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
                if image.size != (width, height) or image.mode != "L":
                    raise CorruptFileError(f"the alpha section is a {image.size[0]}x{image.size[1]} {image.mode} PNG, "
                                           f"expected {width}x{height} L")
                return np.asarray(image, dtype=np.uint8).copy()
    except Image.DecompressionBombError as error:
        raise CorruptFileError(f"the alpha section declares an oversized image: {error}") from error
    except UnidentifiedImageError:
        raise CorruptFileError("the alpha section is not a PNG image") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise CorruptFileError(f"the alpha section is corrupt: {error}") from error


def to_pil(image: DecodedImage) -> Image.Image:
    """The Pillow image to write for a decoded :class:`DecodedImage`."""
    if image.grayscale:
        base = Image.fromarray(image.rgb, mode="RGB").convert("L")
        return Image.merge("LA", (base, Image.fromarray(image.alpha, mode="L"))) if image.alpha is not None else base
    base = Image.fromarray(image.rgb, mode="RGB")
    if image.alpha is not None:
        base.putalpha(Image.fromarray(image.alpha, mode="L"))
    return base


def write_image(path: str | Path, image: DecodedImage) -> None:
    """Write atomically; the format follows the extension (PNG when there is none Pillow knows)."""
    path = Path(path)
    pil = to_pil(image)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    if fmt == "JPEG" and pil.mode in ("RGBA", "LA"):
        raise InputError(f"cannot write alpha to JPEG {path}; use .png")
    with atomic_output(path) as temporary:
        pil.save(temporary, format=fmt)


def read_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The (H, W, 3) uint8 colour of an image file under this module's policy (alpha dropped)."""
    return read_image(path, max_pixels).rgb


def read_gray_image(path: str | Path) -> np.ndarray:
    """An 8-bit grayscale image file as (H, W) uint8; clear errors for colour, 16-bit or corrupt files."""
    with opened_image(path) as image:
        if image.mode == "1":
            image = image.convert("L")
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            raise InputError(f"{path} is a {image.mode} (16-bit or float) image; the lossless codec codes "
                             f"8-bit grayscale only")
        if image.mode != "L":
            raise InputError(f"{path} is a {image.mode} image; the lossless codec codes 8-bit grayscale "
                             f"(L) images only (convert it first if dropping colour is intended)")
        return np.array(image, dtype=np.uint8)


def probe_gray_size(path: Path) -> tuple[int, int] | None:
    """(height, width) of an 8-bit grayscale image file, from its header; None for anything else."""
    try:
        with Image.open(path) as image:
            return (image.height, image.width) if image.mode in ("L", "1") else None
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None


def image_files(folder: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """The image files directly in ``folder`` with one of ``suffixes``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def list_images(folder: str | Path) -> list[Path]:
    """All image files under ``folder`` (recursively), sorted for reproducibility; or, when ``folder`` is
    a ``.txt`` file, the images it lists one per line (paths relative to the list's folder)."""
    root = Path(folder)
    if root.suffix == ".txt" and root.is_file():
        return _listed_images(root)
    if not root.is_dir():
        raise InputError(f"image folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {root}")
    return files


def _listed_images(listing: Path) -> list[Path]:
    names = [line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
    files = [listing.parent / name for name in names]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise InputError(f"{listing} lists {len(missing)} missing file(s), e.g. {missing[0]}")
    if not files:
        raise InputError(f"{listing} lists no images")
    return files
