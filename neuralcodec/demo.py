"""`make demo`: encode and decode a real photo with the shipped image codec at each of its qualities,
verify bit-exact decoding, and compare with JPEG at a similar file size.

The photo is the portrait of Grace Hopper (US Navy, public domain) that matplotlib, a dependency of the
base install, ships among its sample data: the demo needs no extra and no download."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from neuralcodec.api import bound_codec, decode_path, encode_path
from neuralcodec.errors import NeuralCodecError
from neuralcodec.metrics import psnr
from neuralcodec.pretrained import default_model, load_pretrained

OUT_DIR = Path("demo-output")
SAMPLE_PHOTO = "grace_hopper.jpg"
"""A file of matplotlib's sample data (512x600 RGB)."""


def _sample_photo() -> np.ndarray:
    from matplotlib import cbook

    try:
        path = cbook.get_sample_data(SAMPLE_PHOTO, asfileobj=False)
    except (OSError, ValueError) as error:
        raise NeuralCodecError(f"matplotlib's sample photo {SAMPLE_PHOTO} is not installed ({error})") from None
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _jpeg_at_size(rgb: np.ndarray, target_bytes: int) -> tuple[int, float]:
    """The JPEG quality whose file is closest to ``target_bytes``: (bytes, PSNR)."""
    best = None
    for quality in range(5, 96, 5):
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
        size = buffer.tell()
        if best is None or abs(size - target_bytes) < abs(best[0] - target_bytes):
            decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
            best = (size, psnr(rgb, decoded))
    return best


def _run() -> None:
    OUT_DIR.mkdir(exist_ok=True)
    rgb = _sample_photo()
    source = OUT_DIR / "photo.png"
    Image.fromarray(rgb).save(source)
    height, width = rgb.shape[:2]
    print(f"input: {SAMPLE_PHOTO} (matplotlib's sample data), {width}x{height}, written to {source}")
    model = default_model("image-hyperprior")
    print(f"model: {model.model_id} ({model.description})")
    print(f"{'quality':>7} {'bytes':>7} {'bpp':>6} {'PSNR dB':>8} {'enc s':>6} {'dec s':>6} | {'JPEG bytes':>10} {'JPEG PSNR':>9}")
    levels = bound_codec(load_pretrained(model.model_id), "cpu").levels  # the codec the encodes below reuse
    for quality in range(1, levels + 1):
        ncd = OUT_DIR / f"photo-q{quality}.ncd"
        decoded_path = OUT_DIR / f"photo-q{quality}.png"
        enc = encode_path(source, ncd, quality=quality, verify=True)
        dec = decode_path(ncd, decoded_path)
        decoded = np.asarray(Image.open(decoded_path).convert("RGB"))
        jpeg_bytes, jpeg_psnr = _jpeg_at_size(rgb, enc["bytes"])
        print(f"{quality:>7} {enc['bytes']:>7} {enc['bpp']:>6.3f} {psnr(rgb, decoded):>8.2f} "
              f"{enc['seconds']:>6.2f} {dec['seconds']:>6.2f} | {jpeg_bytes:>10} {jpeg_psnr:>9.2f}")
    print(f"decoded images and .ncd files are in {OUT_DIR}/ (decoding was verified bit-exact against the encoder)")


def main() -> int:
    try:
        _run()
    except NeuralCodecError as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
