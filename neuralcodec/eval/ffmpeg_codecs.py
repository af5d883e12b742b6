"""Still-image codecs through the ffmpeg command line: JPEG XL (libjxl), HEVC intra (x265), AV1 (libaom).

Each adapter writes the RGB image as PNG, runs ``ffmpeg`` to a raw bitstream (no container, so the
size is the codec's own: .jxl codestream, HEVC Annex B, AV1 OBUs) and decodes it back to RGB. HEVC and
AV1 code 4:2:0 YUV (the RGB->YUV conversion and chroma subsampling are part of their loss, as in
practice), and grey (``H x W``) images as one grey plane; odd sizes are padded by edge replication and cropped back. The knob is each codec's own:
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
from neuralcodec.eval.classical import check_image_uint8

TIMEOUT_S = 300


@lru_cache(maxsize=1)
def _encoders() -> frozenset[str]:
    """Names of the encoders the installed ffmpeg has (empty without ffmpeg)."""
    if shutil.which("ffmpeg") is None:
        return frozenset()
    listing = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=60)
    return frozenset(line.split()[1] for line in listing.stdout.splitlines()[1:] if len(line.split()) > 1)


@lru_cache(maxsize=1)
def ffmpeg_version() -> str | None:
    """The version ``ffmpeg -version`` states (``5.1.6-0+deb12u1``, ``n7.1``...); None without ffmpeg."""
    if shutil.which("ffmpeg") is None:
        return None
    words = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, timeout=60).stdout.split()
    return words[2] if words[:2] == ["ffmpeg", "version"] and len(words) > 2 else None


def ffmpeg_unavailable_reason(encoder: str) -> str | None:
    """Why ffmpeg cannot encode with ``encoder`` here (not installed, or built without it), or None."""
    if shutil.which("ffmpeg") is None:
        return "ffmpeg is not installed (apt-get install ffmpeg)"
    if encoder not in _encoders():
        return f"this ffmpeg has no {encoder} encoder"
    return None


def run_ffmpeg(args: list[str], what: str) -> None:
    """Run ``ffmpeg -y ARGS`` quietly; NeuralCodecError (with ffmpeg's message) if it fails or hangs."""
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
    """What the knob is, as reports label it (smaller values spend more bits for all three)."""
    knob_range: tuple[float, float]
    integer_knob: bool
    qualities: tuple[float, ...]
    options: tuple[str, ...]
    """Encoder options; ``{q}`` is replaced by the knob value."""
    yuv420: bool
    accepts_gray = True

    def unavailable_reason(self) -> str | None:
        return ffmpeg_unavailable_reason(self.encoder)

    def check_quality(self, quality: float) -> None:
        """Raise InputError unless ``quality`` is a value the encoder takes for its knob."""
        low, high = self.knob_range
        if not low <= quality <= high or (self.integer_knob and quality != int(quality)):
            kind = "an integer " if self.integer_knob else ""
            raise InputError(f"{self.name} {self.knob} must be {kind}in [{low:g}, {high:g}], got {quality:g}")

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        """The raw bitstream of ``image`` (H x W x 3 or H x W grey uint8) at knob value ``quality``."""
        check_image_uint8(image)
        self.check_quality(quality)
        reason = self.unavailable_reason()
        if reason:
            raise NeuralCodecError(f"{self.name} is unavailable: {reason}")
        padded = _pad_even(image) if self.yuv420 else image
        with tempfile.TemporaryDirectory() as work:
            source, target = Path(work) / "in.png", Path(work) / f"out{self.suffix}"
            Image.fromarray(padded).save(source)
            value = f"{quality:g}"
            options = [part.replace("{q}", value) for part in self.options]
            pixel_format = ["-pix_fmt", "gray" if image.ndim == 2 else "yuv420p"] if self.yuv420 else []
            run_ffmpeg(["-i", str(source), "-frames:v", "1", "-c:v", self.encoder, *options, *pixel_format, str(target)],
                 f"{self.name} encode")
            data = target.read_bytes()
        # the decoder needs the true size back: a 4-byte prefix (height, width as uint16) for padded codecs
        return (image.shape[0].to_bytes(2, "big") + image.shape[1].to_bytes(2, "big") + data) if self.yuv420 else data

    def decode(self, data: bytes) -> np.ndarray:
        """The image of a bitstream made by :meth:`encode`: H x W for a grey stream, else H x W x 3."""
        height = width = None
        if self.yuv420:
            if len(data) < 5:
                raise InputError(f"not a {self.name} stream: too short")
            height, width, data = int.from_bytes(data[:2], "big"), int.from_bytes(data[2:4], "big"), data[4:]
        with tempfile.TemporaryDirectory() as work:
            source, target = Path(work) / f"in{self.suffix}", Path(work) / "out.png"
            source.write_bytes(data)
            run_ffmpeg(["-i", str(source), "-frames:v", "1", str(target)], f"{self.name} decode")
            with Image.open(target) as decoded:  # ffmpeg writes a grey PNG for a grey stream
                pixels = np.asarray(decoded.convert("L" if decoded.mode == "L" else "RGB"), dtype=np.uint8)
        return np.ascontiguousarray(pixels[:height, :width]) if self.yuv420 else pixels.copy()


def _pad_even(image: np.ndarray) -> np.ndarray:
    """Edge-replicate to even height and width (4:2:0 needs them)."""
    return np.pad(image, ((0, image.shape[0] % 2), (0, image.shape[1] % 2)) + ((0, 0),) * (image.ndim - 2), mode="edge")


JPEGXL = FfmpegImageCodec("jpegxl", "libjxl", ".jxl", "Butteraugli distance", (0.0, 15.0), False,
                          (12.0, 8.0, 6.0, 4.0, 3.0, 2.0, 1.5, 1.0, 0.6, 0.3), ("-distance", "{q}", "-effort", "7"),
                          yuv420=False)
HEVC = FfmpegImageCodec("hevc", "libx265", ".hevc", "CRF", (0.0, 51.0), False,
                        (46.0, 42.0, 38.0, 34.0, 30.0, 26.0, 22.0, 18.0),
                        ("-crf", "{q}", "-preset", "medium", "-x265-params", "keyint=1:info=0:log-level=error", "-f", "hevc"),
                        yuv420=True)
AV1 = FfmpegImageCodec("av1", "libaom-av1", ".obu", "CRF", (0.0, 63.0), True,
                       (58.0, 52.0, 46.0, 40.0, 34.0, 28.0, 22.0, 16.0),
                       ("-crf", "{q}", "-b:v", "0", "-still-picture", "1", "-cpu-used", "6", "-f", "obu"),
                       yuv420=True)

#: Every ffmpeg-backed still-image adapter by name.
FFMPEG_CODECS: dict[str, FfmpegImageCodec] = {c.name: c for c in (JPEGXL, HEVC, AV1)}
