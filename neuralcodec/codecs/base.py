"""What every codec family provides to the registry, the CLI and the Python API."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

from neuralcodec.container import Limits, Payload
from neuralcodec.pretrained import LoadedWeights


DEFAULT_GOP = 10
"""Group-of-pictures length of video codecs: every DEFAULT_GOP-th frame is coded without reference."""


@dataclass
class EncodeOptions:
    """Options of ``codec encode`` that codecs interpret (each ignores what does not apply)."""

    quality: float | None = None
    gop: int = DEFAULT_GOP
    fps: float | None = None
    """Frame rate of a video given as a folder of frames (default 25)."""
    verify: bool = False
    refine_steps: int = 0
    """Image codecs: steps of encoder-side latent refinement (0: none)."""
    device: str = "cpu"
    limits: Limits = field(default_factory=Limits)


@dataclass
class EncodeResult:
    """A payload ready for the container, plus numbers worth reporting (bpp, PSNR...)."""

    payload: Payload
    stats: dict[str, float | int | str]
    compact: bool = False
    """Write a compact file (few-byte header) when the model has a compact code: one small image."""


class FileCodec(Protocol):
    """A codec family bound to one set of weights."""

    name: ClassVar[str]
    """Family name stored in the container, e.g. ``"image-hyperprior"``."""
    suffixes: ClassVar[tuple[str, ...]]
    """Input file suffixes this family encodes by default."""

    @classmethod
    def from_weights(cls, weights: LoadedWeights, device: str = "cpu") -> "FileCodec":
        """Build the codec from loaded weights."""

    def encode_file(self, source: Path, options: EncodeOptions) -> EncodeResult:
        """Read ``source`` and compress it."""

    def decode_file(self, payload: Payload, target: Path, limits: Limits) -> dict[str, float | int | str]:
        """Decompress ``payload`` and write it to ``target`` (atomically)."""
