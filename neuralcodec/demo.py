"""`make demo`: encode and decode a real photo (scikit-image's astronaut) with the shipped image codec
at each of its qualities, verify bit-exact decoding, and compare with JPEG at a similar file size."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from neuralcodec.api import decode_path, encode_path
from neuralcodec.errors import NeuralCodecError
from neuralcodec.metrics import psnr
from neuralcodec.pretrained import default_model

OUT_DIR = Path("demo-output")


def _sample_photo() -> np.ndarray:
    from skimage import data

    return data.astronaut()


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


def main() -> int:
    OUT_DIR.mkdir(exist_ok=True)
    rgb = _sample_photo()
    source = OUT_DIR / "astronaut.png"
    Image.fromarray(rgb).save(source)
    height, width = rgb.shape[:2]
    print(f"input: scikit-image astronaut, {width}x{height}, written to {source}")
    model = default_model("image-hyperprior")
    print(f"model: {model.model_id} ({model.description})")
    print(f"{'quality':>7} {'bytes':>7} {'bpp':>6} {'PSNR dB':>8} {'enc s':>6} {'dec s':>6} | {'JPEG bytes':>10} {'JPEG PSNR':>9}")
    try:
        for quality in range(1, len(model.config["lambdas"]) + 1):
            ncd = OUT_DIR / f"astronaut-q{quality}.ncd"
            decoded_path = OUT_DIR / f"astronaut-q{quality}.png"
            enc = encode_path(source, ncd, quality=quality, verify=True)
            dec = decode_path(ncd, decoded_path)
            decoded = np.asarray(Image.open(decoded_path).convert("RGB"))
            jpeg_bytes, jpeg_psnr = _jpeg_at_size(rgb, enc["bytes"])
            print(f"{quality:>7} {enc['bytes']:>7} {enc['bpp']:>6.3f} {psnr(rgb, decoded):>8.2f} "
                  f"{enc['seconds']:>6.2f} {dec['seconds']:>6.2f} | {jpeg_bytes:>10} {jpeg_psnr:>9.2f}")
    except NeuralCodecError as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 2
    print(f"decoded images and .ncd files are in {OUT_DIR}/ (decoding was verified bit-exact against the encoder)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
