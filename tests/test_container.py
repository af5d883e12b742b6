"""The .ncd container and safe file I/O: round trips, size, and every kind of malformed input."""

from __future__ import annotations

import json
import os
import re
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from neuralcodec import container, fileio, limits
from neuralcodec.container import Payload
from neuralcodec.limits import Limits
from neuralcodec.errors import (
    ContainerError,
    CorruptFileError,
    InputError,
    LimitExceededError,
    NotNcdFileError,
    TruncatedFileError,
    UnsupportedVersionError,
)

FAST = settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
INT64 = st.integers(-(2**63), 2**63 - 1)
METADATA_VALUES = st.one_of(
    INT64,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.booleans(),
    st.lists(INT64, max_size=8),
)
PAYLOADS = st.builds(
    Payload,
    codec=st.text(max_size=24),
    model_id=st.text(max_size=24),
    weights_hash=st.binary(max_size=container.MAX_HASH_BYTES),
    metadata=st.dictionaries(st.text(max_size=20), METADATA_VALUES, max_size=8),
    sections=st.dictionaries(st.text(max_size=12), st.binary(max_size=300), max_size=5),
)


def mnist_payload() -> Payload:
    """A 28x28 MNIST-like lossless file: short names, an 8-byte weights hash, ~120 bytes of stream."""
    return Payload("pc", "pc-mnist", bytes(range(8)), {"h": 28, "w": 28}, {"y": bytes(range(120))})


def uvarint(value: int) -> bytes:
    """Independent LEB128 encoder, so crafted files do not rely on the code under test."""
    out = bytearray()
    while True:
        out.append(value & 0x7F | (0x80 if value >= 0x80 else 0))
        value >>= 7
        if not value:
            return bytes(out)


def text(value: str) -> bytes:
    raw = value.encode()
    return uvarint(len(raw)) + raw


def seal(body: bytes, version: int = 1) -> bytes:
    """Wrap a hand-made body in magic, version, a correct size field and a valid CRC32."""
    width = 1
    while len(uvarint(8 + width + len(body))) != width:
        width += 1
    content = b"NCD" + bytes([version]) + uvarint(8 + width + len(body)) + body
    return content + zlib.crc32(content).to_bytes(4, "little")


def header(metadata: bytes = b"\x00") -> bytes:
    """Codec 'c', model 'm', no hash, then the given metadata block."""
    return text("c") + text("m") + b"\x00" + metadata


def metadata_summary(payload: Payload) -> str:
    """repr of items: compares order, types (bool vs int), -0.0 and NaN exactly."""
    return repr(list(payload.metadata.items()))


# --------------------------------------------------------------------------------------- round trip


@FAST
@given(PAYLOADS)
def test_round_trip_random_payloads(payload: Payload) -> None:
    back = container.read(container.write(payload))
    assert (back.codec, back.model_id, back.weights_hash) == (payload.codec, payload.model_id, payload.weights_hash)
    assert metadata_summary(back) == metadata_summary(payload)
    assert list(back.sections.items()) == list(payload.sections.items())


def test_numpy_and_tuple_metadata_are_stored_as_plain_python() -> None:
    payload = Payload("c", "m", metadata={"n": np.int64(-5), "f": np.float32(0.5), "b": np.bool_(True), "s": (1, 2)})
    back = container.read(container.write(payload))
    assert metadata_summary(back) == repr([("n", -5), ("f", 0.5), ("b", True), ("s", [1, 2])])


def test_mnist_like_header_is_small() -> None:
    payload = mnist_payload()
    blob = container.write(payload)
    names = len("pc") + len("pc-mnist") + 8 + len("hw") + len("y")
    overhead = len(blob) - 120
    assert overhead - names == 21  # magic 4, size 2, 3 lengths, 2 counts, 2 per item, 2 per section, CRC 4
    assert overhead == 42
    assert container.header_summary(payload)["overhead_bytes"] == overhead


def test_header_summary_is_json() -> None:
    payload = Payload("c", "m", b"\xab\xcd", {"x": b"\x00" * 40, "nan": float("nan")}, {"a": b"12", "b": b""})
    summary = json.loads(json.dumps(container.header_summary(payload), allow_nan=False))
    assert summary["weights_hash"] == "abcd"
    assert summary["sections"] == {"a": 2, "b": 0}
    assert summary["payload_bytes"] == 2
    assert summary["metadata"]["x"]["bytes"] == 40
    assert summary["file_bytes"] == len(container.write(payload))


@pytest.mark.parametrize(
    "payload",
    [
        Payload("c", "m", metadata={"x": object()}),
        Payload("c", "m", metadata={"x": 2**63}),
        Payload("c", "m", metadata={"x": [1, 2.5]}),
        Payload("c", "m", metadata={"x": [True]}),
        Payload("c", "m", metadata={1: 2}),
        Payload("c", "m", weights_hash=bytes(33)),
        Payload("c", "m", sections={"s": "not bytes"}),
        Payload("c" * 5000, "m"),
        Payload("\ud800", "m"),
    ],
)
def test_write_rejects_what_the_format_cannot_hold(payload: Payload) -> None:
    with pytest.raises(InputError):
        container.write(payload)


# ---------------------------------------------------------------------------------- truncation


def test_truncation_at_every_byte_is_reported_as_truncation() -> None:
    blob = container.write(mnist_payload())
    for cut in range(1, len(blob)):
        with pytest.raises(TruncatedFileError, match="truncated|ends"):
            container.read(blob[:cut])


@FAST
@given(PAYLOADS, st.data())
def test_truncation_of_random_payloads(payload: Payload, data: st.DataObject) -> None:
    blob = container.write(payload)
    cut = data.draw(st.integers(1, len(blob) - 1))
    with pytest.raises(TruncatedFileError):
        container.read(blob[:cut])


# ------------------------------------------------------------------------------------ bit flips


def expected_flip_error(index: int) -> type[ContainerError]:
    if index < 3:
        return NotNcdFileError
    return UnsupportedVersionError if index == 3 else CorruptFileError


def test_every_single_bit_flip_is_detected_with_the_right_type() -> None:
    blob = container.write(mnist_payload())
    for index in range(len(blob)):
        for bit in range(8):
            damaged = bytearray(blob)
            damaged[index] ^= 1 << bit
            with pytest.raises(ContainerError) as caught:
                container.read(bytes(damaged))
            assert type(caught.value) is expected_flip_error(index), (index, bit, caught.value)


def test_damaged_size_field_is_corruption_not_truncation() -> None:
    blob = bytearray(container.write(mnist_payload()))
    blob[4] ^= 0x10  # the size field grows: looks like truncation, but the checksum tells otherwise
    with pytest.raises(CorruptFileError, match="size field is damaged"):
        container.read(bytes(blob))


@FAST
@given(PAYLOADS, st.data())
def test_random_damage_after_the_size_field_is_corruption(payload: Payload, data: st.DataObject) -> None:
    blob = bytearray(container.write(payload))
    body_start = 5 if blob[4] < 0x80 else 6
    positions = data.draw(st.lists(st.integers(body_start, len(blob) - 1), min_size=1, max_size=6, unique=True))
    for position in positions:
        blob[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(CorruptFileError):
        container.read(bytes(blob))


@FAST
@given(PAYLOADS, st.binary(min_size=1, max_size=16), st.data())
def test_random_overwrites_anywhere_raise_only_container_errors(payload: Payload, junk: bytes, data) -> None:
    original = container.write(payload)
    blob = bytearray(original)
    start = data.draw(st.integers(0, len(blob) - 1))
    blob[start : start + len(junk)] = junk
    assume(blob != original)
    with pytest.raises(ContainerError):
        container.read(bytes(blob))


def test_checksum_mismatch_message() -> None:
    blob = bytearray(container.write(mnist_payload()))
    blob[-1] ^= 0xFF
    with pytest.raises(CorruptFileError, match=r"^checksum mismatch: the CRC32 at byte \d+"):
        container.read(bytes(blob))


def test_trailing_garbage_is_corruption() -> None:
    blob = container.write(mnist_payload())
    with pytest.raises(CorruptFileError, match="trailing bytes"):
        container.read(blob + b"\x00")
    with pytest.raises(CorruptFileError, match="trailing bytes"):
        container.read(blob + blob)


# ------------------------------------------------------------------------------ magic and version


def test_png_is_named() -> None:
    with pytest.raises(NotNcdFileError, match="looks like a PNG image"):
        container.read(b"\x89PNG\r\n\x1a\n" + bytes(40))


def test_empty_file_is_not_ncd() -> None:
    with pytest.raises(NotNcdFileError, match="empty"):
        container.read(b"")


@FAST
@given(st.binary(max_size=64))
def test_random_bytes_are_not_ncd(data: bytes) -> None:
    if data[:3] == b"NCD" or (data and b"NCD".startswith(data)):
        with pytest.raises((TruncatedFileError, UnsupportedVersionError, CorruptFileError)):
            container.read(data)
    elif data[:2] == container.COMPACT_MAGIC:  # a compact file: needs its model code resolved
        with pytest.raises((TruncatedFileError, NotNcdFileError)):
            container.read(data)
    else:
        with pytest.raises(NotNcdFileError, match="^not an .ncd file"):
            container.read(data)


@pytest.mark.parametrize("version", [2, 255])
def test_future_version_is_unsupported(version: int) -> None:
    blob = seal(header() + b"\x00", version=version)
    with pytest.raises(UnsupportedVersionError, match=f"written by format version {version}, this library reads up to 1"):
        container.read(blob)


def test_version_zero_is_unsupported() -> None:
    with pytest.raises(UnsupportedVersionError, match="version 0"):
        container.read(seal(header() + b"\x00", version=0))


# -------------------------------------------------------------------- crafted files, valid CRC


def test_crafted_file_helper_matches_writer() -> None:
    assert seal(header() + b"\x00") == container.write(Payload("c", "m"))


HUGE = 2**60


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (header() + b"\x01" + text("s") + uvarint(HUGE) + b"abc", CorruptFileError, f"section 's' at byte 14 declares {HUGE} bytes"),
        (text("c") + uvarint(HUGE) + b"m", CorruptFileError, "model id"),
        (text("c") + text("m") + uvarint(HUGE), CorruptFileError, "weights hash"),
        (text("c") + text("m") + b"\x21" + bytes(33) + b"\x00\x00", CorruptFileError, "more than 32"),
        (header(uvarint(10**9)), LimitExceededError, "1000000000 metadata items"),
        (header() + uvarint(10**9), LimitExceededError, "1000000000 sections"),
        (header(b"\x01" + uvarint(HUGE << 3)), CorruptFileError, "metadata key"),
        (header(b"\x01" + uvarint(1 << 3 | 6) + b"k" + uvarint(60000)) + b"\x00", CorruptFileError, "declares 60000 items"),
        (header(b"\x01" + uvarint(1 << 3 | 6) + b"k" + uvarint(10**9)), LimitExceededError, "items in metadata 'k'"),
        (header(b"\x01" + uvarint(1 << 3 | 2) + b"k" + uvarint(HUGE)), CorruptFileError, "metadata 'k'"),
        (header(b"\x01" + uvarint(1 << 3 | 7) + b"k") + b"\x00", CorruptFileError, "unknown type tag 7"),
        (header(b"\x01" + uvarint(1 << 3 | 0) + b"k" + b"\xff" * 11), CorruptFileError, "longer than 10 bytes"),
        (header(b"\x01" + uvarint(1 << 3 | 0) + b"k" + uvarint(2**64)) + b"\x00", CorruptFileError, "64-bit"),
        (header(b"\x01" + uvarint(1 << 3 | 1) + b"k" + b"\x00\x00"), CorruptFileError, "metadata 'k'"),
        (text("c") + b"\x02\xc3\x28" + b"\x00\x00\x00", CorruptFileError, "model id at byte 7 is not valid UTF-8"),
        (header(b"\x02" + b"\x0c" + b"k" + b"\x0c" + b"k") + b"\x00", CorruptFileError, "'k' at byte \\d+ appears twice"),
        (header() + b"\x02" + text("s") + b"\x00" + text("s") + b"\x00", CorruptFileError, "section 's' .* appears twice"),
        (header() + b"\x00" + b"junk", CorruptFileError, "4 unexpected bytes after the last section"),
        (b"", CorruptFileError, r"length of codec name at byte 5 needs 1 byte\(s\) but only 0 remain"),
    ],
)
def test_crafted_inconsistent_files_fail_fast_and_typed(body: bytes, error: type[Exception], message: str) -> None:
    started = time.perf_counter()
    with pytest.raises(error, match=message):
        container.read(seal(body))
    assert time.perf_counter() - started < 0.5


def test_limits_are_configurable() -> None:
    blob = container.write(Payload("codec", "m", metadata={"a": 1, "b": 2}, sections={"x": b"", "y": b""}))
    with pytest.raises(LimitExceededError, match="more than the limit of 10"):
        container.read(blob, Limits(max_file_bytes=10))
    with pytest.raises(LimitExceededError, match="metadata items"):
        container.read(blob, Limits(max_metadata_items=1))
    with pytest.raises(LimitExceededError, match="sections"):
        container.read(blob, Limits(max_sections=1))
    with pytest.raises(LimitExceededError, match="codec name at byte 5 is 5 bytes"):
        container.read(blob, Limits(max_string_bytes=4))


# ---------------------------------------------------------------------------- check_dimensions


def test_check_dimensions_accepts_reasonable_sizes() -> None:
    limits.check_dimensions({"height": 1080, "width": 1920, "frames": 300, "channels": 3}, Limits(max_pixels=2**31))


@pytest.mark.parametrize(
    ("dims", "message"),
    [
        ({"height": 2**40, "width": 1}, "'height' = 1099511627776"),
        ({"height": 28, "width": 0}, "'width' = 0"),
        ({"height": -28, "width": 28}, "'height' = -28"),
        ({"height": 65536, "width": 65536, "channels": 3}, "is 12884901888, over the limit"),
    ],
)
def test_check_dimensions_rejects_absurd_sizes(dims: dict[str, int], message: str) -> None:
    with pytest.raises(LimitExceededError, match=message):
        limits.check_dimensions(dims, Limits())


def test_check_dimensions_rejects_non_integers() -> None:
    with pytest.raises(InputError, match="'height' must be an integer"):
        limits.check_dimensions({"height": 2.5})


# --------------------------------------------------------------------------------------- files


def test_write_file_read_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "digit.ncd"
    container.write_file(path, mnist_payload())
    assert container.read_file(path) == mnist_payload()
    assert os.listdir(tmp_path) == ["digit.ncd"]


def test_read_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.ncd"
    path.write_bytes(container.write(mnist_payload())[:30])
    with pytest.raises(TruncatedFileError, match=f"^{re.escape(str(path))}: the file is truncated"):
        container.read_file(path)
    with pytest.raises(InputError, match="no such file"):
        container.read_file(tmp_path / "missing.ncd")
    with pytest.raises(InputError, match="is a directory"):
        container.read_file(tmp_path)
    with pytest.raises(LimitExceededError, match="is 30 bytes, more than the limit of 29"):
        container.read_file(path, Limits(max_file_bytes=29))


def test_read_bytes_limited(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 100)
    assert fileio.read_bytes_limited(path, 100) == b"x" * 100
    with pytest.raises(LimitExceededError):
        fileio.read_bytes_limited(path, 99)


def test_atomic_output_failure_leaves_target_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "image.png"
    target.write_bytes(b"original")
    with pytest.raises(RuntimeError, match="encoder crashed"):
        with fileio.atomic_output(target) as temporary:
            assert temporary.parent == tmp_path and temporary.suffix == ".png"
            temporary.write_bytes(b"half-written")
            raise RuntimeError("encoder crashed")
    assert target.read_bytes() == b"original"
    assert os.listdir(tmp_path) == ["image.png"]


def test_atomic_output_success_replaces_target(tmp_path: Path) -> None:
    target = tmp_path / "video.mp4"
    target.write_bytes(b"old")
    with fileio.atomic_output(target) as temporary:
        assert not temporary.exists()
        temporary.write_bytes(b"new")
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["video.mp4"]


def test_atomic_write_bytes_failed_rename_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.ncd"
    target.write_bytes(b"original")

    def failing_replace(source: str, destination: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(fileio.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        fileio.atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"original"
    assert os.listdir(tmp_path) == ["out.ncd"]


def test_atomic_output_refuses_bad_locations(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        fileio.atomic_write_bytes(tmp_path, b"x")
    with pytest.raises(InputError, match="does not exist"):
        fileio.atomic_write_bytes(tmp_path / "missing" / "out.ncd", b"x")


def test_ensure_not_same_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "in.png"
    source.write_bytes(b"image")
    link = tmp_path / "link.png"
    link.symlink_to(source)
    monkeypatch.chdir(tmp_path)
    for output in (source, link, "in.png", "./sub/../in.png"):
        with pytest.raises(InputError, match="refusing to overwrite"):
            fileio.ensure_not_same_file(source, output)
    fileio.ensure_not_same_file(source, tmp_path / "out.png")
    with pytest.raises(InputError):
        fileio.ensure_not_same_file(tmp_path / "a.png", tmp_path / "sub" / ".." / "a.png")


def test_atomic_output_gives_new_files_the_umask_mode_and_keeps_a_replaced_files(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        target = tmp_path / "new.bin"
        with fileio.atomic_output(target) as temporary:  # a writer that creates owner-only files
            temporary.write_bytes(b"x")
            temporary.chmod(0o600)
        assert target.stat().st_mode & 0o777 == 0o640
        target.chmod(0o604)
        fileio.atomic_write_bytes(target, b"y")
        assert target.stat().st_mode & 0o777 == 0o604 and target.read_bytes() == b"y"
    finally:
        os.umask(previous)
