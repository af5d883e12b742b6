"""File-level encode/decode shared by the CLI and the Python API.

``codec encode`` runs: cli -> :func:`encode_path` -> registry (family and weights, once) -> the family's
``encode_file`` (reader, transforms, entropy coder) -> ``container.serialize`` -> ``fileio`` (atomic write).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from neuralcodec import container
from neuralcodec.codecs.base import Codec, EncodeOptions, EncodeResult, Family
from neuralcodec.codecs.registry import build_codec, family, family_for_input, lossless_family_for_input, resolve_weights
from neuralcodec.codecs.registry import weights_for_payload
from neuralcodec.container import Payload
from neuralcodec.errors import InputError, LimitExceededError
from neuralcodec.fileio import atomic_write_bytes, check_output_path, ensure_not_same_file
from neuralcodec.limits import Limits
from neuralcodec.pretrained import LoadedWeights, compact_models


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
                lossless: bool = False, **options: Any) -> dict:
    """Encode ``source`` to the .ncd ``target``; nothing is written unless encoding succeeds (and the target's
    folder is checked before any work). ``lossless`` picks a lossless family for the input (see
    ``registry.lossless_family_for_input``). ``options`` are the family's (see its options dataclass: quality,
    refine_steps, gop, fps, verify, device, limits)."""
    check_output_path(target)
    if source.is_file():
        ensure_not_same_file(source, target)
    data, stats = encode_to_bytes(source, model, codec, lossless, **options)
    atomic_write_bytes(target, data)
    return stats


def encode_to_bytes(source: Path, model: str | None = None, codec: str | None = None, lossless: bool = False,
                    **options: Any) -> tuple[bytes, dict]:
    """The .ncd bytes of ``source`` and the coding statistics (see :func:`encode_path`)."""
    if str(source) == "-":
        raise InputError("reading the input from standard input is not supported: name a file (its suffix or "
                         "content picks the codec)")
    if not source.exists():
        raise InputError(f"input not found: {source}")
    if lossless and model is None:
        codec = lossless_family_for_input(source, codec).name
    if model is None and codec is None:
        codec = family_for_input(source).name
    file_codec, encode_options = prepared_encoder(model, codec, options)
    with out_of_memory_as_limit(f"encoding {source}"):
        result = file_codec.encode_file(source, encode_options)
    data = container.serialize(result.payload, result.compact_code)
    return data, encode_stats(result, data)


def prepared_encoder(model: str | None, codec: str | None, options: dict[str, Any]) -> tuple[Codec, EncodeOptions]:
    """The codec that ``model`` / ``codec`` name (built once per process, see :func:`bound_codec`) and its
    family's options filled with ``options``."""
    weights = resolve_weights(model, codec)
    encode_options = family_options(family(weights.codec), options)
    return bound_codec(weights, encode_options.device), encode_options


def encode_stats(result: EncodeResult, data: bytes) -> dict:
    """What ``codec encode`` reports for ``result`` written as ``data``: codec, model, bytes, the family's
    numbers, and bits per pixel."""
    stats = {"codec": result.payload.codec, "model": result.payload.model_id, "bytes": len(data), **result.stats}
    if result.pixels:
        stats["bpp"] = round(8 * len(data) / result.pixels, 5)
    return stats


def decode_path(source: Path, target: Path, model: str | None = None, device: str = "cpu",
                limits: Limits = Limits()) -> dict:
    """Decode the .ncd ``source`` to ``target``; nothing is written unless decoding succeeds."""
    ensure_not_same_file(source, target)
    return decode_payload(container.read_file(source, limits, compact_models()), target, model, device, limits)


def decode_bytes(data: bytes, target: Path, model: str | None = None, device: str = "cpu",
                 limits: Limits = Limits()) -> dict:
    """Decode .ncd file bytes held in memory (``codec decode - OUT`` reads them from standard input) to ``target``."""
    return decode_payload(container.read(data, limits, compact_models()), target, model, device, limits)


def decode_payload(payload: Payload, target: Path, model: str | None = None, device: str = "cpu",
                   limits: Limits = Limits()) -> dict:
    """Decode ``payload`` (read from an .ncd file) to ``target`` with the weights it names (or ``model``); the
    sizes its header declares are checked against ``limits``, and the target's folder, before any model loads."""
    check_output_path(target, folder=True)
    family(payload.codec).check_header(payload, limits)
    file_codec = bound_codec(weights_for_payload(payload, model), device)
    with out_of_memory_as_limit(f"decoding to {target}"):
        stats = file_codec.decode_file(payload, target, limits)
    return {"codec": payload.codec, "model": payload.model_id, **stats}


@contextlib.contextmanager
def out_of_memory_as_limit(what: str) -> Iterator[None]:
    """Running out of memory (Python's MemoryError, torch's failed allocations) as a LimitExceededError: the
    machine's limit, reported in one line, not a bug."""
    try:
        yield
    except MemoryError:
        raise LimitExceededError(f"out of memory while {what}") from None
    except RuntimeError as error:
        if "can't allocate memory" not in str(error):
            raise
        detail = str(error).split("DefaultCPUAllocator: ")[-1].split(". Error code")[0]
        raise LimitExceededError(f"out of memory while {what} ({detail})") from None


_KEPT_CODECS = 4
_codecs: OrderedDict[tuple[str, int | None, str], Codec] = OrderedDict()
_codecs_lock = threading.Lock()


def bound_codec(weights: LoadedWeights, device: str) -> Codec:
    """The codec of ``weights`` on ``device``, built at its first use and kept (the last few): coding many
    files or images in one process pays a model's startup once. Codecs hold no per-file state; the key is
    what a codec is built from: the weights' sha256 (weights that change on disk are rebuilt), their
    compact code (from the registry) and the device."""
    key = (weights.sha256, weights.compact_code, str(device))
    with _codecs_lock:
        if key in _codecs:
            _codecs.move_to_end(key)
            return _codecs[key]
    built = build_codec(weights, device)
    with _codecs_lock:
        _codecs[key] = built
        while len(_codecs) > _KEPT_CODECS:
            _codecs.popitem(last=False)
    return built
