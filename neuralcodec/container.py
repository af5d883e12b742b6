"""The ``.ncd`` container: a small header, named binary sections and a CRC32.

Byte layout (format version 1; "varint" is unsigned LEB128, at most 10 bytes; "str" and "blob" are a
varint length followed by that many bytes, str being UTF-8)::

    magic        b"NCD" + 1 byte format version (= 1)
    file_size    varint   total size of the file in bytes, this field and the checksum included
    codec        str      codec family, e.g. "image-hyperprior"
    model_id     str      pretrained model id
    weights_hash blob     0..32 bytes (normally the first 8 bytes of the weights' sha256)
    n_metadata   varint, then per item:
        head     varint   (len(key) << 3) | type tag
        key      len(key) bytes of UTF-8
        value    by tag: 0 int (zigzag varint, 64-bit range), 1 float (IEEE-754 binary64, little
                 endian), 2 str, 3 blob, 4 False, 5 True (no value bytes),
                 6 list[int] (varint count, then that many zigzag varints)
    n_sections   varint, then per section: name (str), data (blob)
    crc32        4 bytes, little endian: zlib.crc32 of every byte before it

Compact form, for payloads far smaller than that header (one 28x28 image is ~120 bytes)::

    magic        b"Nc"
    model code   varint   small integer a shipped model is registered under (``compact_code``)
    check        2 bytes, little endian: low 16 bits of zlib.crc32(weights_hash + magic + code + stream)
    stream       every remaining byte: the payload's single section "stream"; no metadata

The check covers corruption and a model whose weights changed since the file was written (both
are reported as a CorruptFileError); the model code is resolved by the caller (``compact_models``).

Reading checks, in this order: the magic (NotNcdFileError), the version (UnsupportedVersionError:
a later version may lay out everything after it differently), the declared file size against the
actual size (TruncatedFileError when the file is shorter: truncation is reported as such, never as a
checksum mismatch; but when the checksum is valid for the actual size, the size field itself was
damaged: CorruptFileError), the CRC32 (CorruptFileError), and only then the structure, so a bit flip
anywhere after the version byte is a CorruptFileError. An empty file is a NotNcdFileError; a cut
inside the magic or version bytes is a TruncatedFileError. A structure that is inconsistent despite a valid checksum
(a crafted or buggy file) is a CorruptFileError naming the byte offset; counts and sizes beyond
``Limits`` are a LimitExceededError. Every length is compared with the bytes actually present before
anything is sliced or allocated.

Integrity, not authenticity: the CRC32 (compact files: the 16-bit check) guards against accidental
damage of any byte. A crafted file can carry a valid checksum over any content, so no further unkeyed
checksum is added; the codecs' index CRCs detect decoders that compute different entropy parameters, not
tampering. Authenticity, where needed, is a signature outside the format.
"""

from __future__ import annotations

import math
import operator
import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from neuralcodec import fileio
from neuralcodec.errors import (
    ContainerError,
    CorruptFileError,
    InputError,
    LimitExceededError,
    NotNcdFileError,
    TruncatedFileError,
    UnsupportedVersionError,
)
from neuralcodec.limits import DEFAULT_LIMITS, Limits, is_integer

MAGIC = b"NCD"
COMPACT_MAGIC = b"Nc"
COMPACT_STREAM = "stream"
FORMAT_VERSION = 1
MAX_HASH_BYTES = 32
CRC_BYTES = 4

MetadataValue = Union[int, float, str, bytes, bool, list[int]]

_MAX_VARINT_BYTES = 10
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_TAG_BITS = 3
_FLOAT = struct.Struct("<d")
_TAG_INT, _TAG_FLOAT, _TAG_STR, _TAG_BYTES, _TAG_FALSE, _TAG_TRUE, _TAG_INT_LIST = range(7)

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"RIFF", "a RIFF file (WAV, WebP or AVI)"),
    (b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"fLaC", "a FLAC audio file"),
    (b"OggS", "an Ogg media file"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"PK\x03\x04", "a ZIP archive (or .npz / .pt checkpoint)"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"%PDF", "a PDF document"),
)


@dataclass
class Payload:
    """Everything a codec stores in an ``.ncd`` file."""

    codec: str
    model_id: str
    weights_hash: bytes = b""
    metadata: dict[str, MetadataValue] = field(default_factory=dict)
    sections: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class CompactModel:
    """What a compact file's model code stands for."""

    codec: str
    model_id: str
    weights_hash: bytes


# ----------------------------------------------------------------------------------------- writing


def write(payload: Payload) -> bytes:
    """Serialize ``payload``; InputError for values the format cannot hold, LimitExceededError past 4 GiB."""
    body = bytearray()
    body += _encode_str(payload.codec, "codec name")
    body += _encode_str(payload.model_id, "model id")
    body += _encode_hash(payload.weights_hash)
    body += _encode_metadata(payload.metadata)
    body += _encode_sections(payload.sections)
    head = MAGIC + bytes([FORMAT_VERSION]) + _uvarint(_file_size(len(body)))
    content = head + body
    return bytes(content + zlib.crc32(content).to_bytes(CRC_BYTES, "little"))


def serialize(payload: Payload, compact_code: int | None = None) -> bytes:
    """The file bytes of ``payload``: the compact form as model ``compact_code`` when one is given (the
    payload must then be in its codec's compact layout: one ``"stream"`` section), else a regular file."""
    return write(payload) if compact_code is None else write_compact(payload, compact_code)


def write_compact(payload: Payload, code: int) -> bytes:
    """Serialize a payload holding only a ``"stream"`` section in the compact form, as model ``code``."""
    if payload.metadata or set(payload.sections) != {COMPACT_STREAM}:
        raise InputError("a compact file holds exactly one 'stream' section and no metadata")
    head = COMPACT_MAGIC + _uvarint(code)
    stream = bytes(payload.sections[COMPACT_STREAM])
    return head + _compact_check(payload.weights_hash, head, stream) + stream


def _compact_check(weights_hash: bytes, head: bytes, stream: bytes) -> bytes:
    return (zlib.crc32(bytes(weights_hash) + head + stream) & 0xFFFF).to_bytes(2, "little")


def _read_compact(view: memoryview, compact_models: dict[int, CompactModel] | None) -> Payload:
    cursor = _Cursor(view, len(COMPACT_MAGIC), len(view))
    try:
        code = cursor.uvarint("model code")
        check = cursor.take(2, "checksum")
    except CorruptFileError:
        raise TruncatedFileError(f"the compact file ends at byte {len(view)}, inside its header") from None
    if compact_models is None or code not in compact_models:
        raise NotNcdFileError(f"compact .ncd file of model code {code}, which no installed model has")
    model = compact_models[code]
    stream = bytes(view[cursor.pos :])
    if check != _compact_check(model.weights_hash, bytes(view[: cursor.pos - 2]), stream):
        raise CorruptFileError(f"checksum mismatch: the file is corrupt, or was written with other weights of "
                               f"model {model.model_id!r}")
    return Payload(model.codec, model.model_id, model.weights_hash, {}, {COMPACT_STREAM: stream})


def write_file(path: str | os.PathLike[str], payload: Payload) -> None:
    """Serialize ``payload`` and write it to ``path`` atomically."""
    fileio.atomic_write_bytes(path, write(payload))


def _file_size(body_bytes: int) -> int:
    """Total file size; the size field counts itself, so take the smallest self-consistent width."""
    width = 1
    while len(_uvarint(len(MAGIC) + 1 + width + body_bytes + CRC_BYTES)) != width:
        width += 1
    size = len(MAGIC) + 1 + width + body_bytes + CRC_BYTES
    if size > DEFAULT_LIMITS.max_file_bytes:
        raise LimitExceededError(f"the file would be {size} bytes, more than {DEFAULT_LIMITS.max_file_bytes}")
    return size


def encode_uvarint(value: int) -> bytes:
    """Unsigned LEB128 bytes of ``value`` (>= 0), as every length and count in the format."""
    if value < 0:
        raise InputError(f"cannot write {value} as an unsigned varint")
    return _uvarint(value)


def decode_uvarint(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """``(value, next position)`` of the unsigned varint at ``data[pos:]``; CorruptFileError when cut or too long."""
    cursor = _Cursor(memoryview(data), pos, len(data))
    return cursor.uvarint(what), cursor.pos


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _zigzag_varint(value: int, what: str) -> bytes:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise InputError(f"{what} = {value} does not fit in a signed 64-bit integer")
    return _uvarint((value << 1) ^ (value >> 63))


def _utf8(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise InputError(f"{what} must be a str, got {type(text).__name__}")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} {text!r} is not encodable as UTF-8: {exc.reason}") from None
    if len(raw) > DEFAULT_LIMITS.max_string_bytes:
        raise InputError(f"{what} is {len(raw)} bytes of UTF-8, more than {DEFAULT_LIMITS.max_string_bytes}")
    return raw


def _encode_str(text: Any, what: str) -> bytes:
    raw = _utf8(text, what)
    return _uvarint(len(raw)) + raw


def _encode_blob(data: Any, what: str) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError(f"{what} must be bytes, got {type(data).__name__}")
    raw = bytes(data)
    return _uvarint(len(raw)) + raw


def _encode_hash(weights_hash: Any) -> bytes:
    encoded = _encode_blob(weights_hash, "weights hash")
    if len(weights_hash) > MAX_HASH_BYTES:
        raise InputError(f"weights hash is {len(weights_hash)} bytes, more than {MAX_HASH_BYTES}")
    return encoded


def _encode_metadata(metadata: dict[str, MetadataValue]) -> bytes:
    if len(metadata) > DEFAULT_LIMITS.max_metadata_items:
        raise InputError(f"{len(metadata)} metadata items, more than {DEFAULT_LIMITS.max_metadata_items}")
    out = bytearray(_uvarint(len(metadata)))
    for key, value in metadata.items():
        raw_key = _utf8(key, "metadata key")
        tag, raw_value = _encode_value(value, f"metadata {key!r}")
        out += _uvarint(len(raw_key) << _TAG_BITS | tag) + raw_key + raw_value
    return bytes(out)


def _encode_value(value: Any, what: str) -> tuple[int, bytes]:
    """Type tag and encoded bytes of one metadata value (numpy scalars are accepted)."""
    if isinstance(value, (bool, np.bool_)):
        return (_TAG_TRUE if value else _TAG_FALSE), b""
    if isinstance(value, str):
        return _TAG_STR, _encode_str(value, what)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _TAG_BYTES, _encode_blob(value, what)
    if isinstance(value, (list, tuple)):
        return _TAG_INT_LIST, _encode_int_list(value, what)
    if is_integer(value):
        return _TAG_INT, _zigzag_varint(operator.index(value), what)
    if isinstance(value, (float, np.floating)):
        return _TAG_FLOAT, _FLOAT.pack(float(value))
    raise InputError(f"{what} has unsupported type {type(value).__name__} (use int, float, str, bytes, bool or list[int])")


def _encode_int_list(values: list[Any] | tuple[Any, ...], what: str) -> bytes:
    if len(values) > DEFAULT_LIMITS.max_list_items:
        raise InputError(f"{what} has {len(values)} items, more than {DEFAULT_LIMITS.max_list_items}")
    out = bytearray(_uvarint(len(values)))
    for item in values:
        if not is_integer(item) or isinstance(item, bool):
            raise InputError(f"{what} must be a list of ints, got an item of type {type(item).__name__}")
        out += _zigzag_varint(operator.index(item), what)
    return bytes(out)


def _encode_sections(sections: dict[str, bytes]) -> bytes:
    if len(sections) > DEFAULT_LIMITS.max_sections:
        raise InputError(f"{len(sections)} sections, more than {DEFAULT_LIMITS.max_sections}")
    out = bytearray(_uvarint(len(sections)))
    for name, data in sections.items():
        out += _encode_str(name, "section name")
        out += _encode_blob(data, f"section {name!r}")
    return bytes(out)


# ----------------------------------------------------------------------------------------- reading


def read(data: bytes, limits: Limits | None = None, compact_models: dict[int, CompactModel] | None = None) -> Payload:
    """Parse an ``.ncd`` file held in memory (compact files need ``compact_models`` to resolve their code).

    Malformed input raises a ContainerError subclass; sizes or counts beyond ``limits`` (default
    ``Limits()``) raise LimitExceededError.
    """
    limits = limits or DEFAULT_LIMITS
    view = memoryview(data).cast("B")
    if len(view) > limits.max_file_bytes:
        raise LimitExceededError(f"the file is {len(view)} bytes, more than the limit of {limits.max_file_bytes}")
    if bytes(view[: len(COMPACT_MAGIC)]) == COMPACT_MAGIC and bytes(view[: len(MAGIC)]) != MAGIC:
        return _read_compact(view, compact_models)
    _check_magic_and_version(view)
    body_start = _check_size_and_checksum(view)
    cursor = _Cursor(view, body_start, len(view) - CRC_BYTES)
    payload = _parse_body(cursor, limits)
    if cursor.remaining:
        raise CorruptFileError(f"{cursor.remaining} unexpected bytes after the last section at byte {cursor.pos}")
    return payload


def read_file(path: str | os.PathLike[str], limits: Limits | None = None,
              compact_models: dict[int, CompactModel] | None = None) -> Payload:
    """Read and parse an ``.ncd`` file; container errors are prefixed with the path."""
    limits = limits or DEFAULT_LIMITS
    data = fileio.read_bytes_limited(path, limits.max_file_bytes)
    try:
        return read(data, limits, compact_models)
    except ContainerError as exc:
        raise type(exc)(f"{os.fspath(path)}: {exc}") from None


def _check_magic_and_version(view: memoryview) -> None:
    head = bytes(view[: len(MAGIC)])
    if head != MAGIC:
        if head and MAGIC.startswith(head):
            raise TruncatedFileError(f"the file ends at byte {len(head)}, inside the magic bytes")
        raise NotNcdFileError(f"not an .ncd file: {_describe_foreign(view)}")
    if len(view) == len(MAGIC):
        raise TruncatedFileError(f"the file ends at byte {len(MAGIC)}, before the format version byte")
    version = view[len(MAGIC)]
    if version > FORMAT_VERSION:
        raise UnsupportedVersionError(
            f"the file was written by format version {version}, this library reads up to {FORMAT_VERSION}"
        )
    if version == 0:
        raise UnsupportedVersionError(f"format version 0 does not exist; this library reads 1 to {FORMAT_VERSION}")


def _describe_foreign(view: memoryview) -> str:
    if not len(view):
        return "it is empty"
    start = bytes(view[:16])
    for signature, kind in _SIGNATURES:
        if start.startswith(signature):
            return f"it looks like {kind}"
    if start[4:8] == b"ftyp":
        return "it looks like an MP4/MOV/HEIF file"
    if start.isascii() and start.decode().isprintable():
        return f"it starts with the text {start.decode()!r}, not {MAGIC.decode()!r}"
    return f"it starts with bytes {start[:8].hex(' ')}, not {MAGIC.hex(' ')} ({MAGIC.decode()!r})"


def _check_size_and_checksum(view: memoryview) -> int:
    """Compare the declared size with the real one, then verify the CRC; returns the body offset."""
    size_field = _Cursor(view, len(MAGIC) + 1, len(view))
    try:
        declared = size_field.uvarint("the file size field")
    except CorruptFileError:
        if size_field.remaining:
            raise
        raise TruncatedFileError(f"the file is truncated: it ends at byte {len(view)}, inside the file size field") from None
    actual = len(view)
    if declared != actual:
        _raise_size_mismatch(view, declared, size_field.pos)
    stored = int.from_bytes(view[-CRC_BYTES:], "little")
    computed = zlib.crc32(view[:-CRC_BYTES])
    if stored != computed:
        raise CorruptFileError(
            f"checksum mismatch: the CRC32 at byte {actual - CRC_BYTES} is {stored:08x}, the content gives "
            f"{computed:08x}; the file is damaged"
        )
    return size_field.pos


def _raise_size_mismatch(view: memoryview, declared: int, field_end: int) -> None:
    actual = len(view)
    where = f"the header (bytes {len(MAGIC) + 1}..{field_end - 1}) declares {declared} bytes"
    if _size_field_damaged(view):
        raise CorruptFileError(f"the file size field is damaged: {where}, but the file has {actual}, a size its checksum confirms")
    if declared > actual:
        raise TruncatedFileError(f"the file is truncated: it has {actual} bytes but {where}")
    raise CorruptFileError(f"{actual - declared} unexpected trailing bytes after byte {declared}: {where}")


def _size_field_damaged(view: memoryview) -> bool:
    """True when writing the actual size into the size field makes the checksum valid.

    That tells a damaged size field (the rest of the file intact) from a truly truncated file.
    """
    correct_field = _uvarint(len(view))
    start = len(MAGIC) + 1
    if len(view) < start + len(correct_field) + CRC_BYTES:
        return False
    crc = zlib.crc32(view[:start])
    crc = zlib.crc32(correct_field, crc)
    crc = zlib.crc32(view[start + len(correct_field) : -CRC_BYTES], crc)
    return crc == int.from_bytes(view[-CRC_BYTES:], "little")


class _Cursor:
    """Bounds-checked reading of ``view[pos:end]``; running out is a CorruptFileError."""

    def __init__(self, view: memoryview, pos: int, end: int):
        self.view = view
        self.pos = pos
        self.end = end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def take(self, count: int, what: str) -> bytes:
        if count > self.remaining:
            raise CorruptFileError(f"{what} at byte {self.pos} needs {count} byte(s) but only {self.remaining} remain")
        start, self.pos = self.pos, self.pos + count
        return bytes(self.view[start : self.pos])

    def sized(self, what: str) -> tuple[int, bytes]:
        """Read a varint length and that many bytes; returns the offset of the length field too."""
        start = self.pos
        length = self.uvarint(f"length of {what}")
        if length > self.remaining:
            raise CorruptFileError(f"{what} at byte {start} declares {length} bytes but only {self.remaining} remain")
        return start, self.take(length, what)

    def uvarint(self, what: str) -> int:
        start, value = self.pos, 0
        for index in range(_MAX_VARINT_BYTES):
            byte = self.take(1, what)[0]
            value |= (byte & 0x7F) << (7 * index)
            if byte < 0x80:
                return value
        raise CorruptFileError(f"{what} at byte {start} is a varint longer than {_MAX_VARINT_BYTES} bytes")

    def svarint(self, what: str) -> int:
        start = self.pos
        raw = self.uvarint(what)
        if raw >= 2**64:
            raise CorruptFileError(f"{what} at byte {start} does not fit in a signed 64-bit integer")
        return (raw >> 1) ^ -(raw & 1)

    def blob(self, what: str) -> bytes:
        return self.sized(what)[1]

    def text(self, what: str, limits: Limits) -> str:
        start, raw = self.sized(what)
        return _decode_text(raw, start, what, limits)

    def count(self, what: str, limit: int) -> int:
        start = self.pos
        value = self.uvarint(what)
        if value > limit:
            raise LimitExceededError(f"the file declares {value} {what} at byte {start}, more than the limit of {limit}")
        return value


def _decode_text(raw: bytes, start: int, what: str, limits: Limits) -> str:
    if len(raw) > limits.max_string_bytes:
        raise LimitExceededError(f"{what} at byte {start} is {len(raw)} bytes, more than {limits.max_string_bytes}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"{what} at byte {start} is not valid UTF-8 (at its byte {exc.start})") from None


def _parse_body(cursor: _Cursor, limits: Limits) -> Payload:
    codec = cursor.text("codec name", limits)
    model_id = cursor.text("model id", limits)
    start = cursor.pos
    weights_hash = cursor.blob("weights hash")
    if len(weights_hash) > MAX_HASH_BYTES:
        raise CorruptFileError(f"weights hash at byte {start} is {len(weights_hash)} bytes, more than {MAX_HASH_BYTES}")
    metadata = _parse_metadata(cursor, limits)
    sections = _parse_sections(cursor, limits)
    return Payload(codec, model_id, weights_hash, metadata, sections)


def _parse_metadata(cursor: _Cursor, limits: Limits) -> dict[str, MetadataValue]:
    metadata: dict[str, MetadataValue] = {}
    for _ in range(cursor.count("metadata items", limits.max_metadata_items)):
        start = cursor.pos
        head = cursor.uvarint("metadata item header")
        key = _decode_text(cursor.take(head >> _TAG_BITS, "metadata key"), start, "metadata key", limits)
        if key in metadata:
            raise CorruptFileError(f"metadata key {key!r} at byte {start} appears twice")
        metadata[key] = _parse_value(cursor, head & (1 << _TAG_BITS) - 1, f"metadata {key!r}", limits)
    return metadata


def _parse_value(cursor: _Cursor, tag: int, what: str, limits: Limits) -> MetadataValue:
    if tag == _TAG_INT:
        return cursor.svarint(what)
    if tag == _TAG_FLOAT:
        return _FLOAT.unpack(cursor.take(_FLOAT.size, what))[0]
    if tag == _TAG_STR:
        return cursor.text(what, limits)
    if tag == _TAG_BYTES:
        return cursor.blob(what)
    if tag in (_TAG_FALSE, _TAG_TRUE):
        return tag == _TAG_TRUE
    if tag == _TAG_INT_LIST:
        return _parse_int_list(cursor, what, limits)
    raise CorruptFileError(f"{what} before byte {cursor.pos} has unknown type tag {tag}")


def _parse_int_list(cursor: _Cursor, what: str, limits: Limits) -> list[int]:
    start = cursor.pos
    length = cursor.count(f"items in {what}", limits.max_list_items)
    if length > cursor.remaining:
        raise CorruptFileError(f"{what} at byte {start} declares {length} items but only {cursor.remaining} bytes remain")
    return [cursor.svarint(what) for _ in range(length)]


def _parse_sections(cursor: _Cursor, limits: Limits) -> dict[str, bytes]:
    sections: dict[str, bytes] = {}
    for _ in range(cursor.count("sections", limits.max_sections)):
        start = cursor.pos
        name = cursor.text("section name", limits)
        if name in sections:
            raise CorruptFileError(f"section {name!r} at byte {start} appears twice")
        sections[name] = cursor.blob(f"section {name!r}")
    return sections


# ------------------------------------------------------------------------------- limits and summary


def positive_int_field(metadata: dict[str, MetadataValue], key: str) -> int:
    """``metadata[key]`` when it is a positive integer; CorruptFileError naming the field otherwise."""
    value = metadata.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CorruptFileError(f"missing or invalid {key!r} in the file header: {value!r}")
    return value


def flag_field(metadata: dict[str, MetadataValue], key: str) -> bool:
    """The boolean flag ``metadata[key]`` (absent, as in files written before it existed: False);
    CorruptFileError naming the field when it is not a boolean."""
    value = metadata.get(key, False)
    if not isinstance(value, bool):
        raise CorruptFileError(f"invalid {key!r} in the file header: {value!r}")
    return value


def header_summary(payload: Payload, compact_code: int | None = None) -> dict[str, Any]:
    """A JSON-serializable description of a payload, for ``codec info``; ``compact_code`` describes it as
    the compact file of that model code instead of a regular .ncd file."""
    section_bytes = {name: len(data) for name, data in payload.sections.items()}
    compact = compact_code is not None
    file_bytes = len(serialize(payload, compact_code))
    return {
        "format": "compact" if compact else f"ncd v{FORMAT_VERSION}",
        "codec": payload.codec,
        "model_id": payload.model_id,
        "weights_hash": bytes(payload.weights_hash).hex(),
        "metadata": {key: _jsonable(value) for key, value in payload.metadata.items()},
        "sections": section_bytes,
        "payload_bytes": sum(section_bytes.values()),
        "file_bytes": file_bytes,
        "overhead_bytes": file_bytes - sum(section_bytes.values()),
    }


def _jsonable(value: MetadataValue) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return {"bytes": len(raw), "hex": raw[:32].hex() + ("..." if len(raw) > 32 else "")}
    if isinstance(value, (list, tuple)):
        return [int(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value
