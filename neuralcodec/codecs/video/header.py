"""What a video file's header declares, checked without loading a model (see ``Family.check_header``)."""

from __future__ import annotations

from fractions import Fraction

from neuralcodec.container import Payload, positive_int_field
from neuralcodec.limits import Limits, check_count, check_dimensions
from neuralcodec.media.video import VideoInfo


def video_info(payload: Payload, limits: Limits) -> VideoInfo:
    """Frame size, rate and count recorded in ``payload``, checked against ``limits``."""
    meta = payload.metadata
    height, width = positive_int_field(meta, "height"), positive_int_field(meta, "width")
    frames = positive_int_field(meta, "frames")
    check_dimensions({"height": height, "width": width}, limits)
    check_count("the file's frame count", frames, limits, "max_frames")
    fps = Fraction(positive_int_field(meta, "fps_num"), positive_int_field(meta, "fps_den"))
    return VideoInfo(width, height, fps, frames)


def check_header(payload: Payload, limits: Limits) -> None:
    """LimitExceededError / CorruptFileError for a frame size or count the limits refuse, or a malformed one."""
    video_info(payload, limits)
