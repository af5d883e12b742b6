"""Still-image codecs through the ffmpeg command line: JPEG XL (libjxl), HEVC intra (x265), AV1 (libaom).

Each adapter writes the RGB image as PNG, runs ``ffmpeg`` to a raw bitstream (no container, so the
size is the codec's own: .jxl codestream, HEVC Annex B, AV1 OBUs) and decodes it back to RGB. HEVC and
AV1 code 4:2:0 YUV (the RGB->YUV conversion and chroma subsampling are part of their loss, as in
practice); odd sizes are padded by edge replication and cropped back. The knob is each codec's own:
Butteraugli distance for JPEG XL, CRF for HEVC and AV1 (smaller = more bits). Without ffmpeg, or with
an ffmpeg lacking the encoder, an adapter reports itself unavailable instead of failing.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from neuralcodec.errors import InputError, NeuralCodecError

TIMEOUT_S = 300


@lru_cache(maxsize=1)
def _encoders() -> frozenset[str]:
    """Names of the encoders the installed ffmpeg has (empty without ffmpeg)."""
    if shutil.which("ffmpeg") is None:
        return frozenset()
    listing = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=60)
    return frozenset(line.split()[1] for line in listing.stdout.splitlines()[1:] if len(line.split()) > 1)


def _run(args: list[str], what: str) -> None:
    try:
        done = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args],
                              capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise NeuralCodecError(f"ffmpeg {what} took more than {TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise NeuralCodecError(f"ffmpeg {what} failed: {done.stderr.strip()[-500:]}")


@dataclass(frozen=True)
class FfmpegImageCodec:
    """A still-image codec driven through ffmpeg."""

    name: str
    encoder: str
    suffix: str
    knob: str
    qualities: tuple[float, ...]
    options: tuple[str, ...]
    """Encoder options; ``{q}`` is replaced by the knob value."""
    yuv420: bool

    def unavailable_reason(self) -> str | None:
        if shutil.which("ffmpeg") is None:
            return "ffmpeg is not installed (apt-get install ffmpeg)"
        if self.encoder not in _encoders():
            return f"this ffmpeg has no {self.encoder} encoder"
        return None

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        """The raw bitstream of ``image`` (H x W x 3 uint8) at knob value ``quality``."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
            raise InputError(f"expected an H x W x 3 uint8 image, got {image.dtype} {image.shape}")
        reason = self.unavailable_reason()
        if reason:
            raise NeuralCodecError(f"{self.name} is unavailable: {reason}")
        padded = _pad_even(image) if self.yuv420 else image
        with tempfile.TemporaryDirectory() as work:
            source, target = Path(work) / "in.png", Path(work) / f"out{self.suffix}"
            Image.fromarray(padded).save(source)
            value = f"{quality:g}"
            options = [part.replace("{q}", value) for part in self.options]
            pixel_format = ["-pix_fmt", "yuv420p"] if self.yuv420 else []
            _run(["-i", str(source), "-frames:v", "1", "-c:v", self.encoder, *options, *pixel_format, str(target)],
                 f"{self.name} encode")
            data = target.read_bytes()
        # the decoder needs the true size back: a 4-byte prefix (height, width as uint16) for padded codecs
        return (image.shape[0].to_bytes(2, "big") + image.shape[1].to_bytes(2, "big") + data) if self.yuv420 else data

    def decode(self, data: bytes) -> np.ndarray:
        """The RGB image of a bitstream made by :meth:`encode`."""
        height = width = None
        if self.yuv420:
            if len(data) < 5:
                raise InputError(f"not a {self.name} stream: too short")
            height, width, data = int.from_bytes(data[:2], "big"), int.from_bytes(data[2:4], "big"), data[4:]
        with tempfile.TemporaryDirectory() as work:
            source, target = Path(work) / f"in{self.suffix}", Path(work) / "out.png"
            source.write_bytes(data)
            _run(["-i", str(source), "-frames:v", "1", "-pix_fmt", "rgb24", str(target)], f"{self.name} decode")
            with Image.open(target) as decoded:
                rgb = np.asarray(decoded.convert("RGB"), dtype=np.uint8)
        return np.ascontiguousarray(rgb[:height, :width]) if self.yuv420 else rgb.copy()


def _pad_even(image: np.ndarray) -> np.ndarray:
    """Edge-replicate to even height and width (4:2:0 needs them)."""
    return np.pad(image, ((0, image.shape[0] % 2), (0, image.shape[1] % 2), (0, 0)), mode="edge")


JPEGXL = FfmpegImageCodec("jpegxl", "libjxl", ".jxl", "Butteraugli distance (smaller = more bits)",
                          (12.0, 8.0, 6.0, 4.0, 3.0, 2.0, 1.5, 1.0, 0.6, 0.3), ("-distance", "{q}", "-effort", "7"),
                          yuv420=False)
HEVC = FfmpegImageCodec("hevc", "libx265", ".hevc", "CRF (smaller = more bits)",
                        (46.0, 42.0, 38.0, 34.0, 30.0, 26.0, 22.0, 18.0),
                        ("-crf", "{q}", "-preset", "medium", "-x265-params", "keyint=1:info=0:log-level=error", "-f", "hevc"),
                        yuv420=True)
AV1 = FfmpegImageCodec("av1", "libaom-av1", ".obu", "CRF (smaller = more bits)",
                       (58.0, 52.0, 46.0, 40.0, 34.0, 28.0, 22.0, 16.0),
                       ("-crf", "{q}", "-b:v", "0", "-still-picture", "1", "-cpu-used", "6", "-f", "obu"),
                       yuv420=True)

#: Every ffmpeg-backed still-image adapter by name.
FFMPEG_CODECS: dict[str, FfmpegImageCodec] = {c.name: c for c in (JPEGXL, HEVC, AV1)}
