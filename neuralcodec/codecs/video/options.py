"""Encode options of the video family (what `codec encode` and ``neuralcodec.encode_file`` accept for it)."""

from __future__ import annotations

from dataclasses import dataclass

from neuralcodec.codecs.base import EncodeOptions, cli_option, quality_option

DEFAULT_GOP = 10
"""Group-of-pictures length: every DEFAULT_GOP-th frame is coded without reference."""
MAX_FRAMES = 65536
"""Frames one file can hold (its frame index is a list of at most 65,536 lengths); ``Limits.max_frames``
may only lower this."""


@dataclass
class VideoOptions(EncodeOptions):
    """Options of the video codec."""

    quality: float | None = quality_option()
    gop: int = cli_option(DEFAULT_GOP, "--gop", type=int,
                          help=f"video: group-of-pictures length, frames from one intra frame to the next "
                               f"(default {DEFAULT_GOP})")
    fps: float | None = cli_option(None, "--fps", type=float,
                                   help="video from a folder of frames: its frame rate (default 25)")
