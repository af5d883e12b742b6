"""The Codec contract every codec family implements, and the :class:`Family` record the registry lists.

A family is one folder under ``codecs/`` (model, codec, training, export) plus one line in
``codecs/registry.py``. Its ``family.py`` holds what the CLI and the registry need without importing
torch: the family's name, how it recognises its inputs (``sniff``), its options dataclass and its trainer;
the codec class itself is imported only when a file is coded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from neuralcodec.container import Payload
from neuralcodec.limits import Limits
from neuralcodec.pretrained import LoadedWeights
from neuralcodec.train.arguments import Trainer


def progress_bar(iterable: Any = None, *, show: bool, **options: Any) -> Any:
    """A tqdm bar on stderr that goes away when done, shown only when ``show`` and stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(iterable, disable=None if show else True, leave=False, **options)


def cli_option(default: Any, *flags: str, **argparse_kwargs: Any) -> Any:
    """A field of an options dataclass that ``codec encode`` exposes as ``flags`` (argparse keywords:
    type, help, metavar...). Families that share an option name share the flag."""
    return field(default=default, metadata={"cli": (flags, argparse_kwargs)})


def quality_option() -> Any:
    """The rate knob of variable-rate models (image and video)."""
    return cli_option(None, "--quality", "-q", type=float,
                      help="rate knob of variable-rate models: 1 (smallest file) to the model's number of levels; "
                           "fractions interpolate (default: the middle)")


@dataclass
class EncodeOptions:
    """Options every family takes; each family's options dataclass extends it with ``cli_option`` fields."""

    verify: bool = False
    """Decode after encoding and check that the decoder reproduces the encoder's output exactly."""
    device: str = "cpu"
    """Torch device of the transforms (entropy parameters are always computed on the CPU)."""
    limits: Limits = field(default_factory=Limits)
    """Resource limits applied to the input."""


@dataclass
class EncodeResult:
    """What a family's encoder returns: the payload, how to serialize it, and numbers worth reporting."""

    payload: Payload
    stats: dict[str, float | int | str]
    """Family-specific numbers (size, PSNR, seconds...), printed by ``codec encode``."""
    pixels: int
    """Pixels coded (per image or frame, times the number of images or frames): the denominator of bpp."""
    compact_code: int | None = None
    """The model code to write a compact file with (the payload is then in its compact layout), or None."""


class Codec(Protocol):
    """A codec family bound to one set of weights."""

    name: ClassVar[str]
    """Family name stored in the container, e.g. ``"image-hyperprior"``."""

    @classmethod
    def from_weights(cls, weights: LoadedWeights, device: str = "cpu") -> "Codec":
        """Build the codec from loaded weights."""

    def encode_file(self, source: Path, options: Any) -> EncodeResult:
        """Read ``source`` and compress it (``options``: the family's options dataclass)."""

    def decode_file(self, payload: Payload, target: Path, limits: Limits) -> dict[str, float | int | str]:
        """Decompress ``payload`` and write it to ``target`` (atomically); returns statistics."""


SNIFF_NO, SNIFF_SUFFIX, SNIFF_CONTENT = 0, 1, 2
"""Answers of :attr:`Family.sniff`: cannot code it; codes files with this suffix; recognised the content."""


@dataclass(frozen=True)
class Family:
    """A codec family as the registry, the CLI and the Python API see it."""

    name: str
    summary: str
    sniff: Callable[[Path], int]
    """How strongly the family claims an input path (SNIFF_*); the strongest claim routes the input."""
    options: type[EncodeOptions]
    load_codec_class: Callable[[], type]
    """Imports and returns the family's :class:`Codec` class (torch is imported only then)."""
    check_header: Callable[[Payload, Limits], None]
    """Checks the sizes a file's header declares against the limits, before the codec (and torch) loads:
    LimitExceededError / CorruptFileError, so a hostile header fails at once."""
    decoded_suffix: Callable[[Payload], str]
    """The suffix of what a payload decodes to by default ("" for a folder): ``codec decode -o DIR`` names."""
    trainers: tuple[Trainer, ...] = ()
    """Its ``codec train NAME`` subcommands."""
