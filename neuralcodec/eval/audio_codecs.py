"""Audio codecs through the ffmpeg command line: Opus (libopus) and MP3 (libmp3lame), for mono speech.

The knob of both is the target bitrate in kbit/s. Every encoded stream starts with an 8-byte header
(the original sample rate and length, two big-endian uint32), counted in its size, so that
:meth:`~AudioCodecAdapter.decode` returns the waveform at the original rate and length: ffmpeg
resamples back and the result is trimmed (or zero-padded) to the original number of samples.

- ``opus``: Ogg Opus, VBR, coded at 48 kHz (libopus's native rate; ffmpeg resamples), in libopus's
  ``audio`` mode (closest to the input). Its ``voip`` mode recognised no better on speech clips, and
  its high-pass filter shifts the phase enough to cap the SNR near 14 dB at any bitrate. The Ogg
  pages cost about 0.5 kbit/s on top of the codec's bitrate.
- ``mp3``: MPEG-1/2/2.5 Layer III, CBR, with its Xing/LAME header frame (it carries the encoder delay,
  so the decoded waveform lines up with the original). LAME low-passes the signal by bitrate (about
  3 kHz at 8 kbit/s, 5.5 kHz at 16, 8 kHz at 32, 17 kHz at 64), and each MPEG frame spends fixed side
  information, so a high sample rate at a low bitrate only wastes bits. Like the ``lame`` command line
  when left to choose, the adapter therefore codes at the lowest standard MP3 rate whose band holds
  that low-pass (:data:`MP3_CODING_RATES`), never above the input's rate.
"""

from __future__ import annotations

import struct
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from neuralcodec.errors import InputError, NeuralCodecError
from neuralcodec.eval.ffmpeg_codecs import ffmpeg_unavailable_reason, run_ffmpeg

_HEADER = struct.Struct(">II")  # original sample rate, original length in samples
MAX_SAMPLE_RATE = 384_000

#: The sample rate MP3 codes at, per CBR bitrate (kbit/s): the lowest standard rate whose band holds
#: the low-pass LAME applies at that bitrate.
MP3_CODING_RATES: dict[int, int] = {8: 8000, 16: 12000, 24: 16000, 32: 22050, 40: 22050, 48: 24000,
                                    56: 32000, 64: 44100}
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
"""Every rate MP3 codes at; each bitrate of the table is legal at every rate up to its own."""


class AudioCodecAdapter(Protocol):
    """A lossy codec for mono waveforms, swept over its bitrate."""

    name: str
    knob: str
    """``target kbit/s``."""
    qualities: tuple[float, ...]
    """The default sweep: target bitrates in kbit/s."""

    def check_quality(self, quality: float) -> None:
        """Raise InputError unless the codec takes the bitrate ``quality`` (kbit/s)."""

    def unavailable_reason(self) -> str | None:
        """Why the codec cannot run here (e.g. ffmpeg missing), or None when it can."""

    def encode(self, wave: np.ndarray, sample_rate: int, quality: float) -> bytes:
        """Everything :meth:`decode` needs to rebuild ``wave`` (1-D float32 in [-1, 1]) at ``quality`` kbit/s."""

    def decode(self, data: bytes) -> tuple[np.ndarray, int]:
        """(1-D float32 waveform of the original length, original sample rate) of :meth:`encode`'s bytes."""


def _check_wave(wave: np.ndarray, sample_rate: int) -> None:
    if not isinstance(wave, np.ndarray) or wave.dtype != np.float32 or wave.ndim != 1:
        raise InputError(f"expected a 1-D float32 mono waveform, got {getattr(wave, 'dtype', type(wave).__name__)} "
                         f"{getattr(wave, 'shape', '')}")
    if not 0 < wave.size < 2**32:
        raise InputError(f"waveform length must be between 1 and 2**32 - 1 samples, got {wave.size}")
    if not np.isfinite(wave).all():
        raise InputError("waveform has NaN or infinite samples")
    if not isinstance(sample_rate, (int, np.integer)) or not 0 < sample_rate <= MAX_SAMPLE_RATE:
        raise InputError(f"sample_rate must be an integer in 1..{MAX_SAMPLE_RATE} Hz, got {sample_rate!r}")


@dataclass(frozen=True)
class _FfmpegAudioCodec(ABC):
    """Encode/decode through ffmpeg; subclasses check the bitrate and choose the coding sample rate."""

    name: str
    encoder: str
    container: str
    """ffmpeg's muxer name, also the temporary file's suffix."""
    options: tuple[str, ...]
    qualities: tuple[float, ...]
    knob = "target kbit/s"

    def unavailable_reason(self) -> str | None:
        return ffmpeg_unavailable_reason(self.encoder)

    @abstractmethod
    def check_quality(self, kbps: float) -> None:
        """Raise InputError unless the codec takes ``kbps``."""

    @abstractmethod
    def _coding_rate(self, kbps: float, sample_rate: int) -> int:
        """The sample rate to code a ``sample_rate`` input at ``kbps``."""

    def encode(self, wave: np.ndarray, sample_rate: int, quality: float) -> bytes:
        _check_wave(wave, sample_rate)
        self.check_quality(quality)
        reason = self.unavailable_reason()
        if reason:
            raise NeuralCodecError(f"{self.name} is unavailable: {reason}")
        with tempfile.TemporaryDirectory() as work:
            source, target = Path(work) / "in.f32", Path(work) / f"out.{self.container}"
            wave.astype("<f4").tofile(source)
            run_ffmpeg(["-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-i", str(source),
                        "-ar", str(self._coding_rate(quality, sample_rate)), "-c:a", self.encoder,
                        "-b:a", str(round(quality * 1000)), *self.options,
                        "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
                        "-f", self.container, str(target)], f"{self.name} encode")
            return _HEADER.pack(sample_rate, wave.size) + target.read_bytes()

    def decode(self, data: bytes) -> tuple[np.ndarray, int]:
        if len(data) <= _HEADER.size:
            raise InputError(f"not a {self.name} stream: {len(data)} bytes is too short")
        sample_rate, length = _HEADER.unpack_from(data)
        if not 0 < sample_rate <= MAX_SAMPLE_RATE or length == 0:
            raise InputError(f"not a {self.name} stream: header says {length} samples at {sample_rate} Hz")
        with tempfile.TemporaryDirectory() as work:
            source, target = Path(work) / f"in.{self.container}", Path(work) / "out.f32"
            source.write_bytes(data[_HEADER.size:])
            run_ffmpeg(["-i", str(source), "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), str(target)],
                       f"{self.name} decode")
            decoded = np.fromfile(target, dtype="<f4")[:length]
        return np.pad(decoded, (0, length - decoded.size)).astype(np.float32), sample_rate


class OpusCodec(_FfmpegAudioCodec):
    """Ogg Opus (libopus), VBR, ``-application audio``, coded at 48 kHz."""

    MIN_KBPS, MAX_KBPS = 0.5, 256.0  # what libopus takes for one channel

    def check_quality(self, kbps: float) -> None:
        if not self.MIN_KBPS <= kbps <= self.MAX_KBPS:
            raise InputError(f"opus bitrate must be {self.MIN_KBPS:g}-{self.MAX_KBPS:g} kbit/s, got {kbps:g}")

    def _coding_rate(self, kbps: float, sample_rate: int) -> int:
        return 48000


class Mp3Codec(_FfmpegAudioCodec):
    """MP3 (libmp3lame), CBR, coded at the sample rate of :data:`MP3_CODING_RATES` (at most the input's)."""

    def check_quality(self, kbps: float) -> None:
        if kbps not in MP3_CODING_RATES:
            raise InputError(f"mp3 bitrate must be one of {', '.join(map(str, MP3_CODING_RATES))} kbit/s, got {kbps:g}")

    def _coding_rate(self, kbps: float, sample_rate: int) -> int:
        ceiling = min(MP3_CODING_RATES[int(kbps)], sample_rate)
        return max((r for r in _MP3_RATES if r <= ceiling), default=_MP3_RATES[0])


OPUS = OpusCodec("opus", "libopus", "ogg", ("-vbr", "on", "-application", "audio"),
                 (6.0, 8.0, 10.0, 12.0, 16.0, 24.0, 32.0, 48.0))
MP3 = Mp3Codec("mp3", "libmp3lame", "mp3", ("-id3v2_version", "0", "-write_xing", "1"),
               (8.0, 16.0, 24.0, 32.0, 48.0, 64.0))

#: Every audio adapter by name.
AUDIO_CODECS: dict[str, AudioCodecAdapter] = {c.name: c for c in (OPUS, MP3)}


def audio_adapter(name: str) -> AudioCodecAdapter:
    """The audio codec adapter called ``name``."""
    try:
        return AUDIO_CODECS[name]
    except KeyError:
        raise InputError(f"unknown audio codec {name!r}; known: {', '.join(AUDIO_CODECS)}") from None
