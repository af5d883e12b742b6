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
from neuralcodec.codecs.registry import codec_for_payload, family, family_for_input, resolve_weights
from neuralcodec.errors import InputError
from neuralcodec.fileio import atomic_write_bytes, ensure_not_same_file
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
    """Encode ``source`` to the .ncd ``target``; nothing is written unless encoding succeeds. ``options``
    are the family's (see its options dataclass: quality, refine_steps, gop, fps, verify, device, limits)."""
    if not source.exists():
        raise InputError(f"input not found: {source}")
    if source.is_file():
        ensure_not_same_file(source, target)
    if model is None and codec is None:
        codec = family_for_input(source).name
    weights = resolve_weights(model, codec)
    chosen = family(weights.codec)
    encode_options = family_options(chosen, options)
    file_codec = chosen.load_codec_class().from_weights(weights, encode_options.device)
    result = file_codec.encode_file(source, encode_options)
    data = container.serialize(result.payload, result.compact_code)
    atomic_write_bytes(target, data)
    stats = {"codec": result.payload.codec, "model": result.payload.model_id, "bytes": len(data), **result.stats}
    if result.pixels:
        stats["bpp"] = round(8 * len(data) / result.pixels, 5)
    return stats


def decode_path(source: Path, target: Path, model: str | None = None, device: str = "cpu",
                limits: Limits = Limits()) -> dict:
    """Decode the .ncd ``source`` to ``target``; nothing is written unless decoding succeeds."""
    ensure_not_same_file(source, target)
    payload = container.read_file(source, limits, compact_models())
    file_codec = codec_for_payload(payload, model, device)
    return {"codec": payload.codec, "model": payload.model_id, **file_codec.decode_file(payload, target, limits)}
