"""File-level encode/decode shared by the CLI and the Python API.

``codec encode`` runs: cli -> :func:`encode_path` -> registry (family and weights, once) -> the family's
``encode_file`` (reader, transforms, entropy coder) -> ``container.serialize`` -> ``fileio`` (atomic write).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from neuralcodec import container
from neuralcodec.codecs.base import EncodeOptions, Family
from neuralcodec.codecs.registry import build_codec, codec_for_payload, family, family_for_input, resolve_weights
from neuralcodec.container import Payload
from neuralcodec.errors import InputError
from neuralcodec.fileio import atomic_write_bytes, check_output_path, ensure_not_same_file
from neuralcodec.limits import Limits
from neuralcodec.pretrained import compact_models


def family_options(chosen: Family, given: dict[str, Any]) -> EncodeOptions:
    """``chosen``'s options dataclass filled with ``given`` (options left out keep their defaults);
    InputError naming the family's options when one does not apply to it."""
    known = {f.name for f in dataclasses.fields(chosen.options)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise InputError(f"option {', '.join(unknown)} does not apply to {chosen.name} "
                         f"(its options: {', '.join(sorted(known))})")
    return chosen.options(**given)


def encode_path(source: Path, target: Path, model: str | None = None, codec: str | None = None,
                **options: Any) -> dict:
    """Encode ``source`` to the .ncd ``target``; nothing is written unless encoding succeeds (and the target's
    folder is checked before any work). ``options`` are the family's (see its options dataclass: quality,
    refine_steps, gop, fps, verify, device, limits)."""
    check_output_path(target)
    if source.is_file():
        ensure_not_same_file(source, target)
    data, stats = encode_to_bytes(source, model, codec, **options)
    atomic_write_bytes(target, data)
    return stats


def encode_to_bytes(source: Path, model: str | None = None, codec: str | None = None,
                    **options: Any) -> tuple[bytes, dict]:
    """The .ncd bytes of ``source`` and the coding statistics (see :func:`encode_path`)."""
    if str(source) == "-":
        raise InputError("reading the input from standard input is not supported: name a file (its suffix or "
                         "content picks the codec)")
    if not source.exists():
        raise InputError(f"input not found: {source}")
    if model is None and codec is None:
        codec = family_for_input(source).name
    weights = resolve_weights(model, codec)
    chosen = family(weights.codec)
    encode_options = family_options(chosen, options)
    file_codec = build_codec(chosen, weights, encode_options.device)
    result = file_codec.encode_file(source, encode_options)
    data = container.serialize(result.payload, result.compact_code)
    stats = {"codec": result.payload.codec, "model": result.payload.model_id, "bytes": len(data), **result.stats}
    if result.pixels:
        stats["bpp"] = round(8 * len(data) / result.pixels, 5)
    return data, stats


def decode_path(source: Path, target: Path, model: str | None = None, device: str = "cpu",
                limits: Limits = Limits()) -> dict:
    """Decode the .ncd ``source`` to ``target``; nothing is written unless decoding succeeds."""
    ensure_not_same_file(source, target)
    check_output_path(target, folder=True)
    return decode_payload(container.read_file(source, limits, compact_models()), target, model, device, limits)


def decode_bytes(data: bytes, target: Path, model: str | None = None, device: str = "cpu",
                 limits: Limits = Limits()) -> dict:
    """Decode .ncd file bytes held in memory (``codec decode - OUT`` reads them from standard input) to ``target``."""
    check_output_path(target, folder=True)
    return decode_payload(container.read(data, limits, compact_models()), target, model, device, limits)


def decode_payload(payload: Payload, target: Path, model: str | None, device: str, limits: Limits) -> dict:
    """Decode a parsed payload to ``target`` with the codec its header names (or ``model``); the sizes the
    header declares are checked against ``limits`` before any model loads."""
    family(payload.codec).check_header(payload, limits)
    file_codec = codec_for_payload(payload, model, device)
    return {"codec": payload.codec, "model": payload.model_id, **file_codec.decode_file(payload, target, limits)}
