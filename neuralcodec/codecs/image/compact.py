"""The compact layout of an image payload: what the regular metadata says, in a few bytes ahead of the
ANS stream, for files of shipped models that have a compact code (``container.write_compact``).

A 112x92 face at a low rate is ~100 bytes of ANS stream; a regular .ncd header (codec name, model id,
weights hash, typed metadata) would add ~100 more. The compact file is 5 bytes of container header plus:

    height  varint
    width   varint
    level   varint   gain level x LEVEL_STEPS (levels that are not such a multiple are not packed)
    flags   1 byte   bit 0: grayscale, bit 1: cropped latent (other bits: a corrupt file)
    check   2 bytes  low 16 bits (LE) of the CRC32 of the scale indexes (decoder-mismatch check)
    bits    the ANS stream

Images with alpha keep the regular layout (the alpha plane has its own section).
"""

from __future__ import annotations

from neuralcodec.container import COMPACT_STREAM, Payload, decode_uvarint, encode_uvarint
from neuralcodec.errors import CorruptFileError

LEVEL_STEPS = 256
CHECK_MASK = 0xFFFF
_GRAYSCALE = 1
_CROPPED_LATENT = 2


def pack(payload: Payload) -> Payload | None:
    """The compact layout of a regular image payload, or None when it does not fit it (alpha, fine level)."""
    meta = payload.metadata
    level_code = meta["level"] * LEVEL_STEPS
    if set(payload.sections) != {"bits"} or level_code != int(level_code):
        return None
    flags = (_GRAYSCALE if meta.get("grayscale") else 0) | (_CROPPED_LATENT if meta.get("cropped_latent") else 0)
    head = (encode_uvarint(meta["height"]) + encode_uvarint(meta["width"]) + encode_uvarint(int(level_code))
            + bytes([flags])
            + (meta["index_crc"] & CHECK_MASK).to_bytes(2, "little"))
    return Payload(payload.codec, payload.model_id, payload.weights_hash, {},
                   {COMPACT_STREAM: head + payload.sections["bits"]})


def unpack(payload: Payload) -> Payload:
    """The regular layout of ``payload`` (unchanged when it is regular). A compact payload's ``index_crc``
    holds only the check's 16 bits, and ``index_crc_mask`` says so."""
    if COMPACT_STREAM not in payload.sections:
        return payload
    data = payload.sections[COMPACT_STREAM]
    height, pos = decode_uvarint(data, 0, "image height")
    width, pos = decode_uvarint(data, pos, "image width")
    level_code, pos = decode_uvarint(data, pos, "gain level")
    if len(data) < pos + 3:
        raise CorruptFileError("the compact image header is cut")
    flags, check = data[pos], int.from_bytes(data[pos + 1:pos + 3], "little")
    if flags & ~(_GRAYSCALE | _CROPPED_LATENT):
        raise CorruptFileError(f"unknown flags {flags:#04x} in the compact image header")
    metadata = {"height": height, "width": width, "level": level_code / LEVEL_STEPS,
                "grayscale": bool(flags & _GRAYSCALE), "index_crc": check, "index_crc_mask": CHECK_MASK,
                **({"cropped_latent": True} if flags & _CROPPED_LATENT else {})}
    return Payload(payload.codec, payload.model_id, payload.weights_hash, metadata, {"bits": data[pos + 3:]})
