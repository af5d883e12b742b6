"""Classical video codecs through ffmpeg (x264, x265) for rate-distortion comparisons on RGB frames.

Frames go to ffmpeg as rgb24, which converts them to yuv420p (BT.601, what the encoders code; odd
sides are edge-padded to even), and come back from the decoder as rgb24, so distortion is measured in
RGB against the same frames every codec was given. Streams are raw (Annex B) bitstreams: their size is
the codec's own, with no container. The group of pictures is fixed (``keyint = min-keyint = gop``,
no scene-cut detection) to match the learned codec's.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from neuralcodec.errors import InputError, NeuralCodecError
from neuralcodec.eval.ffmpeg_codecs import TIMEOUT_S, ffmpeg_unavailable_reason, run_ffmpeg


@dataclass(frozen=True)
class FfmpegVideoCodec:
    """x264 or x265 at one preset, swept over CRF."""

    name: str
    encoder: str
    preset: str
    crfs: tuple[float, ...] = (22.0, 26.0, 30.0, 34.0, 38.0, 42.0)

    def unavailable_reason(self) -> str | None:
        return ffmpeg_unavailable_reason(self.encoder)

    def _gop_options(self, gop: int) -> list[str]:
        if self.encoder == "libx265":
            return ["-x265-params", f"keyint={gop}:min-keyint={gop}:scenecut=0:info=0:log-level=error", "-f", "hevc"]
        return ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-f", "h264"]

    def encode(self, frames: Sequence[np.ndarray], fps: Fraction, crf: float, gop: int) -> bytes:
        """The raw bitstream of ``frames`` ((H, W, 3) uint8, one size) at ``crf``."""
        reason = self.unavailable_reason()
        if reason:
            raise NeuralCodecError(f"{self.name} is unavailable: {reason}")
        if not frames:
            raise InputError("no frames to encode")
        height, width = frames[0].shape[:2]
        padded = [np.pad(f, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge") for f in frames]
        fps = Fraction(fps)
        with tempfile.TemporaryDirectory() as work:
            target = Path(work) / "stream"
            command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                       "-s", f"{padded[0].shape[1]}x{padded[0].shape[0]}", "-r", f"{fps.numerator}/{fps.denominator}",
                       "-i", "-", "-pix_fmt", "yuv420p", "-c:v", self.encoder, "-preset", self.preset,
                       "-crf", f"{crf:g}", *self._gop_options(gop), str(target)]
            done = subprocess.run(command, input=b"".join(f.tobytes() for f in padded), capture_output=True,
                                  timeout=TIMEOUT_S)
            if done.returncode != 0:
                raise NeuralCodecError(f"{self.name} encode failed: {done.stderr.decode(errors='replace')[-500:]}")
            return target.read_bytes()

    def decode(self, data: bytes, height: int, width: int) -> list[np.ndarray]:
        """The (H, W, 3) uint8 frames of a stream from :meth:`encode` (cropped back to ``height`` x ``width``)."""
        with tempfile.TemporaryDirectory() as work:
            source, target = Path(work) / f"stream.{'hevc' if self.encoder == 'libx265' else 'h264'}", Path(work) / "rgb"
            source.write_bytes(data)
            run_ffmpeg(["-i", str(source), "-f", "rawvideo", "-pix_fmt", "rgb24", str(target)], f"{self.name} decode")
            raw = np.frombuffer(target.read_bytes(), np.uint8)
        padded_h, padded_w = height + height % 2, width + width % 2
        frames = raw.reshape(-1, padded_h, padded_w, 3)
        return [np.ascontiguousarray(f[:height, :width]) for f in frames]


#: The classical video codecs of the comparisons, by name.
VIDEO_CODECS: dict[str, FfmpegVideoCodec] = {
    c.name: c for c in (FfmpegVideoCodec("x264-medium", "libx264", "medium"),
                        FfmpegVideoCodec("x264-veryslow", "libx264", "veryslow"),
                        FfmpegVideoCodec("x265-medium", "libx265", "medium"),
                        FfmpegVideoCodec("x265-veryslow", "libx265", "veryslow"))
}
