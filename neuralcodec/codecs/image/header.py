"""What an image file's header declares, checked without loading a model (see ``Family.check_header``)."""

from __future__ import annotations

from neuralcodec.codecs.image import compact
from neuralcodec.container import Payload, positive_int_field
from neuralcodec.limits import Limits, check_dimensions


def image_size(payload: Payload, limits: Limits) -> tuple[int, int]:
    """(height, width) of a regular or compact image payload, checked against ``limits``."""
    meta = compact.unpack(payload).metadata
    height, width = positive_int_field(meta, "height"), positive_int_field(meta, "width")
    check_dimensions({"height": height, "width": width}, limits)
    return height, width


def check_header(payload: Payload, limits: Limits) -> None:
    """LimitExceededError / CorruptFileError for an image size the limits refuse or a malformed one."""
    image_size(payload, limits)
