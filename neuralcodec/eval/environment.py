"""What a `codec eval` run measured with: package versions, Python, ffmpeg, and when (UTC)."""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version

from neuralcodec.eval.ffmpeg_codecs import ffmpeg_version

PACKAGES = ("neuralcodec", "torch", "pillow", "numpy")
"""The distributions whose versions a report records."""


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def environment() -> dict[str, str | None]:
    """Versions of :data:`PACKAGES`, Python and ffmpeg (None where absent)."""
    return {**{package: _version(package) for package in PACKAGES}, "python": platform.python_version(),
            "ffmpeg": ffmpeg_version()}


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (``2025-01-31T12:00:00+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
