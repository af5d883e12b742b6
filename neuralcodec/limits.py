"""The resource policy: caps on what a file or an input may make the library allocate.

Every size read from a file header or an input's header is checked here before anything is allocated
from it. The defaults are stated once, in :class:`Limits`; users raise them with ``--max-pixels`` /
``--max-frames`` or ``Limits(max_pixels=...)`` in Python.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from neuralcodec.errors import InputError, LimitExceededError

DEFAULT_MAX_PIXELS = 64_000_000
"""Pixels of one image or video frame (64 Mpixel), and of the images a lossless file holds together."""
DEFAULT_MAX_FRAMES = 65_536
"""Frames of one video file."""
RAISE_HINT = {"max_pixels": "--max-pixels", "max_frames": "--max-frames"}
"""The command-line flag that raises each user-facing limit (Python: ``Limits(<name>=...)``)."""


@dataclass(frozen=True)
class Limits:
    """Safety caps applied to untrusted files and inputs, before any allocation sized by them."""

    max_file_bytes: int = 4 * 2**30
    max_sections: int = 4096
    max_metadata_items: int = 256
    max_string_bytes: int = 4096
    max_list_items: int = 65536
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_frames: int = DEFAULT_MAX_FRAMES
    max_side: int = 65536

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not is_integer(value) or value < 1:
                raise InputError(f"limit {name} must be a positive integer, got {value!r}")

    def exceeded(self, what: str, value: int, limit_name: str) -> LimitExceededError:
        """The error for ``what`` = ``value`` over the limit ``limit_name``, saying how to raise it."""
        limit = getattr(self, limit_name)
        hint = RAISE_HINT.get(limit_name)
        how = f" (raise it with {hint}, or Limits({limit_name}=...) in Python)" if hint else ""
        return LimitExceededError(f"{what} is {value}, over the limit of {limit} {limit_name.removeprefix('max_')}{how}")


def check_dimensions(dims: dict[str, int], limits: Limits | None = None) -> None:
    """Raise LimitExceededError unless every dimension is in 1..max_side and their product ≤ max_pixels.

    Codecs call this with sizes read from a header before allocating anything from them.
    """
    limits = limits or DEFAULT_LIMITS
    product = 1
    for name, value in dims.items():
        if isinstance(value, bool) or not is_integer(value):
            raise InputError(f"dimension {name!r} must be an integer, got {type(value).__name__}")
        value = operator.index(value)
        if not 1 <= value <= limits.max_side:
            raise LimitExceededError(f"dimension {name!r} = {value} is outside the allowed range 1..{limits.max_side}")
        product *= value
    if product > limits.max_pixels:
        shape = " x ".join(f"{name} {value}" for name, value in dims.items())
        raise limits.exceeded(shape, product, "max_pixels")


def check_count(what: str, value: int, limits: Limits, limit_name: str) -> None:
    """LimitExceededError when ``value`` (a count read from a header) is over the limit ``limit_name``."""
    if value > getattr(limits, limit_name):
        raise limits.exceeded(what, value, limit_name)


def is_integer(value: object) -> bool:
    """Whether ``value`` is an integer (Python or numpy; bool counts, as for ``operator.index``)."""
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


DEFAULT_LIMITS = Limits()
