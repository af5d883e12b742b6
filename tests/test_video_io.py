"""Video reading/writing: Y4M natively, frame folders, ffmpeg containers; colour conversion; bad inputs."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuralcodec.media.video import (
    VideoInfo, open_video, open_video_writer, rgb_to_yuv, yuv_to_rgb,
)
from neuralcodec.limits import Limits
from neuralcodec.errors import InputError, LimitExceededError


def moving_frames(count: int = 4, height: int = 50, width: int = 70) -> list[np.ndarray]:
    """Smooth colour gradients drifting one pixel a frame (odd sizes on purpose)."""
    yy, xx = np.mgrid[0:height, 0:width]
    return [np.stack([(xx + t) * 3 % 256, (yy * 4 + t) % 256, (xx + yy + 2 * t) % 256], axis=-1).astype(np.uint8)
            for t in range(count)]


def test_yuv_conversion_matches_bt601_reference_values():
    white, black = np.full((1, 1, 3), 255, np.uint8), np.zeros((1, 1, 3), np.uint8)
    assert np.allclose(rgb_to_yuv(white), [[[235, 128, 128]]])
    assert np.allclose(rgb_to_yuv(black), [[[16, 128, 128]]])
    assert np.allclose(rgb_to_yuv(np.array([[[255, 0, 0]]], np.uint8)), [[[81.481, 90.203, 240.0]]])
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3)).astype(np.uint8)
    assert np.array_equal(yuv_to_rgb(rgb_to_yuv(rgb)), rgb)  # full-resolution conversion is exact after rounding


def test_y4m_round_trip_keeps_size_rate_and_frames(tmp_path: Path):
    frames = moving_frames()
    info = VideoInfo(70, 50, Fraction(30000, 1001))
    with open_video_writer(tmp_path / "clip.y4m", info) as writer:
        for frame in frames:
            writer.write(frame)
    header = (tmp_path / "clip.y4m").read_bytes().split(b"\n", 1)[0]
    assert header == b"YUV4MPEG2 W70 H50 F30000:1001 Ip A1:1 C420jpeg"
    with open_video(tmp_path / "clip.y4m") as reader:
        assert reader.info == VideoInfo(70, 50, Fraction(30000, 1001), len(frames))  # the count from the file size
        decoded = list(reader)
    assert len(decoded) == len(frames)
    # 4:2:0 loses chroma detail; these gradients are smooth, so the round trip stays close
    assert all(np.abs(a.astype(int) - b).mean() < 3 for a, b in zip(frames, decoded))
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file is left behind"


def test_y4m_frame_count_is_unknown_when_markers_carry_parameters(tmp_path: Path):
    with open_video_writer(tmp_path / "clip.y4m", VideoInfo(70, 50)) as writer:
        for frame in moving_frames(3):
            writer.write(frame)
    data = (tmp_path / "clip.y4m").read_bytes()
    (tmp_path / "tagged.y4m").write_bytes(data.replace(b"FRAME\n", b"FRAME Ip\n"))
    with open_video(tmp_path / "tagged.y4m") as reader:
        assert reader.info.frames is None and len(list(reader)) == 3
    (tmp_path / "cut.y4m").write_bytes(data[:-1])
    with open_video(tmp_path / "cut.y4m") as reader:
        assert reader.info.frames is None


def test_frame_folder_round_trip_is_lossless(tmp_path: Path):
    frames = moving_frames()
    with open_video_writer(tmp_path / "frames", VideoInfo(70, 50)) as writer:
        for frame in frames:
            writer.write(frame)
    with open_video(tmp_path / "frames", fps=Fraction(50)) as reader:
        assert reader.info == VideoInfo(70, 50, Fraction(50), 4)
        assert all(np.array_equal(a, b) for a, b in zip(frames, reader))


def test_failed_write_leaves_nothing(tmp_path: Path):
    with pytest.raises(ValueError):
        with open_video_writer(tmp_path / "clip.y4m", VideoInfo(70, 50)) as writer:
            writer.write(moving_frames(1)[0])
            writer.write(np.zeros((10, 10, 3), np.uint8))  # wrong size
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_lossless_container_round_trip_through_ffmpeg(tmp_path: Path, suffix: str):
    frames = moving_frames(3, 48, 64)
    with open_video_writer(tmp_path / f"clip{suffix}", VideoInfo(64, 48, Fraction(25))) as writer:
        for frame in frames:
            writer.write(frame)
    with open_video(tmp_path / f"clip{suffix}") as reader:
        assert (reader.info.width, reader.info.height, reader.info.fps) == (64, 48, Fraction(25))
        assert all(np.array_equal(a, b) for a, b in zip(frames, reader))


def _y4m(tmp_path: Path, header: bytes, body: bytes = b"") -> Path:
    path = tmp_path / "bad.y4m"
    path.write_bytes(header + body)
    return path


@pytest.mark.parametrize("header, body, match", [
    (b"YUV4MPEG2 W4 H4 F25:1 C420jpeg\n", b"FRAME\n" + bytes(10), "truncated"),
    (b"YUV4MPEG2 W4 H4 F25:1 C420jpeg\n", b"FRAMX\n" + bytes(24), "does not start with FRAME"),
    (b"YUV4MPEG2 W4 H4 C420p10\n", b"", "not supported"),
    (b"YUV4MPEG2 W4 H4 It\n", b"", "interlaced"),
    (b"YUV4MPEG2 H4\n", b"", "W/H"),
    (b"YUV4MPEG2 W4 H4 Fx:1\n", b"", "frame rate"),
    (b"NOTAVIDEO W4 H4\n", b"", "not a Y4M"),
])
def test_malformed_y4m_gives_clear_errors(tmp_path: Path, header: bytes, body: bytes, match: str):
    with pytest.raises(InputError, match=match):
        with open_video(_y4m(tmp_path, header, body)) as reader:
            list(reader)


def test_huge_header_is_refused_before_reading(tmp_path: Path):
    with pytest.raises(LimitExceededError):
        open_video(_y4m(tmp_path, b"YUV4MPEG2 W20000 H20000\n"), Limits(max_pixels=2**26))


def test_empty_file_missing_path_and_mixed_frame_sizes(tmp_path: Path):
    (tmp_path / "empty.y4m").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        open_video(tmp_path / "empty.y4m")
    with pytest.raises(InputError, match="no such"):
        open_video(tmp_path / "missing.y4m")
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "a.png")
    Image.fromarray(np.zeros((8, 9, 3), np.uint8)).save(folder / "b.png")
    with pytest.raises(InputError, match="first frame"):
        list(open_video(folder))
    with pytest.raises(InputError, match="cannot write video"):
        open_video_writer(tmp_path / "out.gif", VideoInfo(8, 8))


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_unreadable_container_is_reported(tmp_path: Path):
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100))
    with pytest.raises(InputError, match="not a readable video"):
        open_video(tmp_path / "broken.mp4")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
@pytest.mark.parametrize("name", ["x264-medium", "x265-medium"])
def test_classical_video_codecs_round_trip_odd_sized_frames(name: str):
    from neuralcodec.eval.video_codecs import VIDEO_CODECS

    codec = VIDEO_CODECS[name]
    if codec.unavailable_reason():
        pytest.skip(codec.unavailable_reason())
    frames = moving_frames(5)
    coarse, fine = (codec.decode(codec.encode(frames, Fraction(25), crf, gop=4), 50, 70) for crf in (40, 18))
    assert len(fine) == 5 and fine[0].shape == (50, 70, 3)
    error = [np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(frames, d)]) for d in (coarse, fine)]
    assert error[1] < error[0] and error[1] < 4
    assert len(codec.encode(frames, Fraction(25), 18, gop=4)) > len(codec.encode(frames, Fraction(25), 40, gop=4))
