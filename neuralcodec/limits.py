"""The resource policy: caps on what a file or an input may make the library allocate."""

from __future__ import annotations

import operator
from dataclasses import dataclass

from neuralcodec.errors import InputError, LimitExceededError


@dataclass(frozen=True)
class Limits:
    """Safety caps applied to untrusted files and to the dimensions codecs read from them."""

    max_file_bytes: int = 4 * 2**30
    max_sections: int = 4096
    max_metadata_items: int = 256
    max_string_bytes: int = 4096
    max_list_items: int = 65536
    max_pixels: int = 2**30
    max_side: int = 65536


DEFAULT_LIMITS = Limits()


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
        raise LimitExceededError(f"{shape} = {product} elements, more than the limit of {limits.max_pixels}")


def is_integer(value: object) -> bool:
    """Whether ``value`` is an integer (Python or numpy; bool counts, as for ``operator.index``)."""
    try:
        operator.index(value)
    except TypeError:
        return False
    return True
