"""What a lossless file's header declares, checked without loading a model (see ``Family.check_header``)."""

from __future__ import annotations

from neuralcodec.container import Payload
from neuralcodec.errors import CorruptFileError
from neuralcodec.limits import Limits, check_count


def image_count(payload: Payload) -> int:
    """Number of images the payload declares (1 when it holds a single image)."""
    count = payload.metadata.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise CorruptFileError(f"the file's image count {count!r} is not a positive integer")
    return count


def check_header(payload: Payload, limits: Limits) -> None:
    """LimitExceededError / CorruptFileError for an image count the limits refuse (each image has at least
    one pixel; the codec checks the exact pixel total with its model's image size) or a malformed one."""
    check_count("the file's image count", image_count(payload), limits, "max_pixels")
