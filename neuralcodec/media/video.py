"""Reading and writing video as a stream of RGB frames, so memory does not grow with video length.

Readers (``open_video``): Y4M natively (4:2:0, 4:2:2, 4:4:4 and mono, 8-bit); a folder of image frames
(PNG/BMP/TIFF..., sorted by name) with Pillow; anything else (MP4, MKV, AVI, WebM...) through ffmpeg.
Writers (``open_video_writer``): Y4M (4:2:0), a folder of PNG frames, or a lossless MP4 (x264 RGB,
QP 0) / MKV (FFV1) through ffmpeg. Every writer works on a temporary path that is renamed onto the
target only when the last frame is written, so a failed run leaves nothing half-written.

Colour: Y4M carries no matrix; frames are converted with BT.601 limited range (ffmpeg's default for
unspecified YUV), chroma upsampled bilinearly with centred siting.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from neuralcodec.errors import InputError, NeuralCodecError
from neuralcodec.fileio import check_output_path
from neuralcodec.limits import Limits, check_dimensions
from neuralcodec.media.images import LOSSLESS_SUFFIXES, image_files

Y4M_MAGIC = b"YUV4MPEG2"
Y4M_FRAME = b"FRAME\n"
"""A frame marker without parameters (what the writer writes)."""
MAX_HEADER_BYTES = 4096
DEFAULT_FPS = Fraction(25)
VIDEO_SUFFIXES = (".y4m", ".mp4", ".mkv", ".avi", ".mov", ".webm")
LOSSLESS_FFMPEG_ARGS = {".mp4": ["-c:v", "libx264rgb", "-qp", "0", "-preset", "veryfast"],
                        ".mkv": ["-c:v", "ffv1"]}

# BT.601 limited range: [Y, Cb, Cr] = offset + RGB_TO_YUV @ [R, G, B] for RGB in [0, 255].
RGB_TO_YUV = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]) / 255.0
YUV_OFFSET = np.array([16.0, 128.0, 128.0])
YUV_TO_RGB = np.linalg.inv(RGB_TO_YUV)
_CHROMA = {"420jpeg": (2, 2), "420paldv": (2, 2), "420mpeg2": (2, 2), "420": (2, 2), "422": (2, 1),
           "444": (1, 1), "mono": None}


@dataclass(frozen=True)
class VideoInfo:
    """Frame size and rate of a video; ``frames`` is the count expected before reading (a Y4M file's size, the
    container's count), None when unknown (streams, Y4M frames with parameters)."""

    width: int
    height: int
    fps: Fraction = DEFAULT_FPS
    frames: int | None = None


def check_frame_size(width: int, height: int, limits: Limits) -> None:
    """InputError/LimitExceededError for sizes no frame can have."""
    if width < 1 or height < 1:
        raise InputError(f"invalid frame size {width}x{height}")
    check_dimensions({"width": width, "height": height}, limits)


# ------------------------------------------------------------------------------------------- colour
def rgb_to_yuv(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, 3) float64 Y'CbCr (BT.601 limited range, full resolution)."""
    return rgb.astype(np.float64) @ RGB_TO_YUV.T + YUV_OFFSET


def yuv_to_rgb(yuv: np.ndarray) -> np.ndarray:
    """(H, W, 3) float Y'CbCr -> (H, W, 3) uint8 RGB (rounded, clipped)."""
    return np.clip(np.rint((yuv - YUV_OFFSET) @ YUV_TO_RGB.T), 0, 255).astype(np.uint8)


def _upsample(plane: np.ndarray, height: int, width: int, factor: tuple[int, int]) -> np.ndarray:
    if factor == (1, 1):
        return plane.astype(np.float64)
    import torch  # here only: reading a Y4M header must not pay for importing torch
    import torch.nn.functional as F

    x = torch.from_numpy(plane.astype(np.float64))[None, None]
    size = (plane.shape[0] * factor[1], plane.shape[1] * factor[0])
    up = F.interpolate(x, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
    return up[:height, :width]


def _downsample(plane: np.ndarray, factor: tuple[int, int]) -> np.ndarray:
    """Mean over ``factor`` blocks (edge-replicated to whole blocks): centred chroma siting."""
    fx, fy = factor
    height, width = plane.shape
    padded = np.pad(plane, ((0, (-height) % fy), (0, (-width) % fx)), mode="edge")
    return padded.reshape(padded.shape[0] // fy, fy, padded.shape[1] // fx, fx).mean(axis=(1, 3))


# -------------------------------------------------------------------------------------------- readers
class VideoReader(ABC):
    """An iterator of (H, W, 3) uint8 RGB frames with the video's :class:`VideoInfo`; a context manager."""

    info: VideoInfo

    @abstractmethod
    def __iter__(self) -> Iterator[np.ndarray]:
        """The frames, in order, one at a time."""

    def close(self) -> None:
        """Release the source (file handle or ffmpeg process)."""

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Y4MReader(VideoReader):
    """YUV4MPEG2 with 8-bit samples; frames are converted to RGB as they are read."""

    def __init__(self, path: Path, limits: Limits = Limits()) -> None:
        self.path = path
        self._handle: BinaryIO = open(path, "rb")
        try:
            params = self._read_header()
            self.info, self.colorspace = self._parse(params, limits)
        except BaseException:
            self._handle.close()
            raise
        factor = _CHROMA[self.colorspace]
        width, height = self.info.width, self.info.height
        self._chroma_shape = None if factor is None else (-(-height // factor[1]), -(-width // factor[0]))
        chroma = 0 if factor is None else 2 * self._chroma_shape[0] * self._chroma_shape[1]
        self.frame_bytes = width * height + chroma
        self.info = replace(self.info, frames=self._frame_count())

    def _frame_count(self) -> int | None:
        """The frame count the file's size implies when every frame has a plain FRAME marker, else None
        (markers with parameters, a pipe)."""
        status = os.fstat(self._handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            return None
        frames, leftover = divmod(status.st_size - self._handle.tell(), len(Y4M_FRAME) + self.frame_bytes)
        return frames if leftover == 0 else None

    def _read_header(self) -> list[str]:
        line = self._handle.readline(MAX_HEADER_BYTES)
        if not line.startswith(Y4M_MAGIC):
            raise InputError(f"{self.path} is not a Y4M file (no YUV4MPEG2 header)")
        if not line.endswith(b"\n"):
            raise InputError(f"{self.path}: Y4M header is longer than {MAX_HEADER_BYTES} bytes or cut")
        return line[len(Y4M_MAGIC):].decode("ascii", errors="replace").split()

    def _parse(self, params: list[str], limits: Limits) -> tuple[VideoInfo, str]:
        fields = {p[0]: p[1:] for p in params if p}
        try:
            width, height = int(fields["W"]), int(fields["H"])
        except (KeyError, ValueError):
            raise InputError(f"{self.path}: Y4M header lacks a valid W/H") from None
        check_frame_size(width, height, limits)
        fps = DEFAULT_FPS
        if "F" in fields:
            try:
                num, den = (int(v) for v in fields["F"].split(":"))
                fps = Fraction(num, den) if num > 0 and den > 0 else DEFAULT_FPS
            except ValueError:
                raise InputError(f"{self.path}: invalid Y4M frame rate {fields['F']!r}") from None
        colorspace = fields.get("C", "420jpeg")
        if colorspace not in _CHROMA:
            raise InputError(f"{self.path}: Y4M colour space C{colorspace} is not supported "
                             f"(supported: {', '.join('C' + c for c in _CHROMA)}; 8-bit only)")
        if fields.get("I", "p") not in ("p", "?"):
            raise InputError(f"{self.path}: interlaced Y4M (I{fields['I']}) is not supported")
        return VideoInfo(width, height, fps), colorspace

    def __iter__(self) -> Iterator[np.ndarray]:
        index = 0
        while True:
            marker = self._handle.readline(MAX_HEADER_BYTES)
            if not marker:
                return
            if not marker.startswith(b"FRAME"):
                raise InputError(f"{self.path}: frame {index} does not start with FRAME (corrupt or mismatched size)")
            data = self._handle.read(self.frame_bytes)
            if len(data) != self.frame_bytes:
                raise InputError(f"{self.path}: frame {index} is truncated ({len(data)} of {self.frame_bytes} bytes)")
            yield self._to_rgb(np.frombuffer(data, np.uint8))
            index += 1

    def _to_rgb(self, samples: np.ndarray) -> np.ndarray:
        width, height = self.info.width, self.info.height
        luma = samples[:width * height].reshape(height, width).astype(np.float64)
        if self._chroma_shape is None:
            chroma = [np.full_like(luma, 128.0)] * 2
        else:
            factor = _CHROMA[self.colorspace]
            planes = samples[width * height:].reshape(2, *self._chroma_shape)
            chroma = [_upsample(planes[i], height, width, factor) for i in range(2)]
        return yuv_to_rgb(np.stack([luma, *chroma], axis=-1))

    def close(self) -> None:
        self._handle.close()


class FrameFolderReader(VideoReader):
    """A folder of same-size image frames, read in file-name order."""

    def __init__(self, folder: Path, limits: Limits = Limits(), fps: Fraction = DEFAULT_FPS) -> None:
        self.files = image_files(folder, LOSSLESS_SUFFIXES)
        if not self.files:
            raise InputError(f"{folder} holds no frames ({', '.join(LOSSLESS_SUFFIXES)})")
        width, height = _image_size(self.files[0])
        check_frame_size(width, height, limits)
        self.info = VideoInfo(width, height, fps, len(self.files))

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.files:
            with _opened(path) as image:
                if image.size != (self.info.width, self.info.height):
                    raise InputError(f"{path.name} is {image.size[0]}x{image.size[1]}; the first frame is "
                                     f"{self.info.width}x{self.info.height}")
                yield np.asarray(image.convert("RGB"))


class FfmpegReader(VideoReader):
    """Any container/codec ffmpeg reads, decoded to rgb24 through a pipe, one frame at a time."""

    def __init__(self, path: Path, limits: Limits = Limits()) -> None:
        if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
            raise InputError(f"reading {path.suffix or 'this'} video needs ffmpeg (apt-get install ffmpeg); "
                             "Y4M and frame folders are read without it")
        self.path = path
        stream = _probe(path)
        width, height = int(stream["width"]), int(stream["height"])
        check_frame_size(width, height, limits)
        self.info = VideoInfo(width, height, _rate(stream.get("avg_frame_rate") or stream.get("r_frame_rate")),
                              int(stream["nb_frames"]) if str(stream.get("nb_frames", "")).isdigit() else None)
        self._process: subprocess.Popen | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        frame_bytes = self.info.width * self.info.height * 3
        self._process = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(self.path), "-map", "0:v:0",
             "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self._process.stdout is not None
        while True:
            data = self._process.stdout.read(frame_bytes)
            if len(data) < frame_bytes:
                break
            yield np.frombuffer(data, np.uint8).reshape(self.info.height, self.info.width, 3)
        self._process.wait()
        if self._process.returncode != 0:
            message = self._process.stderr.read().decode(errors="replace").strip().splitlines() if self._process.stderr else []
            raise InputError(f"ffmpeg could not decode {self.path}: {message[-1] if message else 'unknown error'}")

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


def _probe(path: Path) -> dict:
    done = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                           "stream=width,height,avg_frame_rate,r_frame_rate,nb_frames", "-of", "json", str(path)],
                          capture_output=True, text=True, timeout=60)
    streams = json.loads(done.stdout or "{}").get("streams", []) if done.returncode == 0 else []
    if not streams:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no video stream"
        raise InputError(f"{path} is not a readable video ({reason})")
    return streams[0]


def _rate(text: str | None) -> Fraction:
    try:
        rate = Fraction(text) if text else DEFAULT_FPS
    except (ValueError, ZeroDivisionError):
        return DEFAULT_FPS
    return rate if rate > 0 else DEFAULT_FPS


def _opened(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except Exception as error:  # Pillow raises several types for unreadable files
        raise InputError(f"{path} is not a readable image ({error})") from None


def _image_size(path: Path) -> tuple[int, int]:
    with _opened(path) as image:
        return image.size


def open_video(path: str | Path, limits: Limits = Limits(), fps: Fraction | None = None) -> VideoReader:
    """A reader for ``path``: a .y4m file, a folder of frames (at ``fps``, default 25), or any video ffmpeg reads."""
    path = Path(path)
    if path.is_dir():
        return FrameFolderReader(path, limits, fps or DEFAULT_FPS)
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty")
    with open(path, "rb") as handle:
        head = handle.read(len(Y4M_MAGIC))
    if head == Y4M_MAGIC or path.suffix.lower() == ".y4m":
        return Y4MReader(path, limits)
    return FfmpegReader(path, limits)


# -------------------------------------------------------------------------------------------- writers
class VideoWriter(ABC):
    """Writes RGB frames to a temporary location; :meth:`commit` moves it onto the target."""

    def __init__(self, target: Path, info: VideoInfo) -> None:
        check_output_path(target, folder=True)
        if target.is_dir():
            raise InputError(f"{target} is an existing folder; decoding to frames writes a new folder (or name a "
                             f".y4m/.mp4/.mkv file)")
        self.target = target
        self.info = info
        self.temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp{target.suffix}")
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        if frame.shape != (self.info.height, self.info.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame of shape {frame.shape} {frame.dtype}, expected "
                             f"({self.info.height}, {self.info.width}, 3) uint8")
        self._write(frame)
        self.frames += 1

    @abstractmethod
    def _write(self, frame: np.ndarray) -> None: ...

    def commit(self) -> None:
        """Finish the output and rename it onto the target (a folder of frames never replaces anything)."""
        if self.target.is_dir() or (self.temporary.is_dir() and self.target.exists()):
            raise InputError(f"{self.target} appeared while decoding; nothing was replaced")
        os.replace(self.temporary, self.target)

    def discard(self) -> None:
        """Remove whatever was written (on failure)."""
        if self.temporary.is_dir():
            shutil.rmtree(self.temporary, ignore_errors=True)
        else:
            self.temporary.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
            self.commit()
        else:
            self.close(failed=True)
            self.discard()

    def close(self, failed: bool = False) -> None:
        """Flush and close the temporary output."""


class Y4MWriter(VideoWriter):
    """YUV4MPEG2, 4:2:0 (C420jpeg), BT.601 limited range."""

    def __init__(self, target: Path, info: VideoInfo) -> None:
        super().__init__(target, info)
        self._handle = open(self.temporary, "xb")
        fps = Fraction(info.fps)
        self._handle.write(f"YUV4MPEG2 W{info.width} H{info.height} F{fps.numerator}:{fps.denominator} "
                           "Ip A1:1 C420jpeg\n".encode())

    def _write(self, frame: np.ndarray) -> None:
        yuv = rgb_to_yuv(frame)
        planes = [yuv[..., 0]] + [_downsample(yuv[..., c], (2, 2)) for c in (1, 2)]
        self._handle.write(Y4M_FRAME)
        for plane in planes:
            self._handle.write(np.clip(np.rint(plane), 0, 255).astype(np.uint8).tobytes())

    def close(self, failed: bool = False) -> None:
        if not self._handle.closed:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()


class FrameFolderWriter(VideoWriter):
    """PNG frames ``frame00001.png``... in a new folder."""

    def __init__(self, target: Path, info: VideoInfo) -> None:
        super().__init__(target, info)
        self.temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        self.temporary.mkdir()

    def _write(self, frame: np.ndarray) -> None:
        Image.fromarray(frame).save(self.temporary / f"frame{self.frames + 1:05d}.png")


class FfmpegLosslessWriter(VideoWriter):
    """Lossless MP4 (x264 RGB, QP 0) or MKV (FFV1) through an ffmpeg pipe."""

    def __init__(self, target: Path, info: VideoInfo) -> None:
        super().__init__(target, info)
        if shutil.which("ffmpeg") is None:
            raise InputError(f"writing {target.suffix} needs ffmpeg (apt-get install ffmpeg); write .y4m or a folder")
        fps = Fraction(info.fps)
        self._process = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
             "-s", f"{info.width}x{info.height}", "-r", f"{fps.numerator}/{fps.denominator}", "-i", "-",
             *LOSSLESS_FFMPEG_ARGS[target.suffix.lower()], str(self.temporary)],
            stdin=subprocess.PIPE, stderr=subprocess.PIPE)

    def _write(self, frame: np.ndarray) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(frame.tobytes())
        except BrokenPipeError:
            raise NeuralCodecError(f"ffmpeg stopped while writing {self.target}: {self._stderr()}") from None

    def _stderr(self) -> str:
        return self._process.stderr.read().decode(errors="replace").strip() if self._process.stderr else ""

    def close(self, failed: bool = False) -> None:
        if self._process.stdin and not self._process.stdin.closed:
            try:
                self._process.stdin.close()
            except BrokenPipeError:
                pass
        if failed:
            self._process.kill()
        self._process.wait()
        if not failed and self._process.returncode != 0:
            raise NeuralCodecError(f"ffmpeg failed writing {self.target}: {self._stderr()}")


WRITER_SUFFIXES = (".y4m", *LOSSLESS_FFMPEG_ARGS)


def open_video_writer(target: str | Path, info: VideoInfo) -> VideoWriter:
    """A writer for ``target``: ``.y4m``, ``.mp4``/``.mkv`` (lossless, ffmpeg), or a folder of PNG frames
    (a path without a suffix, or an existing folder)."""
    target = Path(target)
    suffix = target.suffix.lower()
    if suffix == ".y4m":
        return Y4MWriter(target, info)
    if suffix in LOSSLESS_FFMPEG_ARGS:
        return FfmpegLosslessWriter(target, info)
    if suffix == "" or target.is_dir():
        return FrameFolderWriter(target, info)
    raise InputError(f"cannot write video as {suffix}: use .y4m, .mp4 or .mkv (lossless), or a folder name")
