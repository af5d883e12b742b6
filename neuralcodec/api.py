"""File-level encode/decode shared by the CLI and the Python API."""

from __future__ import annotations

from pathlib import Path

from neuralcodec import container
from neuralcodec.codecs.base import DEFAULT_GOP, EncodeOptions
from neuralcodec.codecs.registry import codec_for_payload, compact_models, family_for_input, load_codec, serialize
from neuralcodec.container import Limits
from neuralcodec.errors import InputError
from neuralcodec.fileio import atomic_write_bytes, ensure_not_same_file


def encode_path(source: Path, target: Path, model: str | None = None, codec: str | None = None,
                quality: float | None = None, verify: bool = False, device: str = "cpu",
                limits: Limits = Limits(), gop: int | None = None, fps: float | None = None,
                refine_steps: int = 0) -> dict:
    """Encode ``source`` to the .ncd ``target``; nothing is written unless encoding succeeds."""
    if not source.exists():
        raise InputError(f"input not found: {source}")
    if source.is_file():
        ensure_not_same_file(source, target)
    if model is None and codec is None:
        codec = family_for_input(source)
    file_codec = load_codec(model, codec, device)
    options = EncodeOptions(quality=quality, verify=verify, device=device, limits=limits, gop=gop or DEFAULT_GOP,
                            fps=fps, refine_steps=refine_steps)
    result = file_codec.encode_file(source, options)
    data = serialize(result.payload, result.compact)
    atomic_write_bytes(target, data)
    stats = {"codec": result.payload.codec, "model": result.payload.model_id, "bytes": len(data), **result.stats}
    if "width" in stats and "height" in stats:
        count = stats.get("images", stats.get("frames", 1))
        stats["bpp"] = round(8 * len(data) / (stats["width"] * stats["height"] * count), 5)
    return stats


def decode_path(source: Path, target: Path, model: str | None = None, device: str = "cpu",
                limits: Limits = Limits()) -> dict:
    """Decode the .ncd ``source`` to ``target``; nothing is written unless decoding succeeds."""
    ensure_not_same_file(source, target)
    payload = container.read_file(source, limits, compact_models())
    file_codec = codec_for_payload(payload, model, device)
    return {"codec": payload.codec, "model": payload.model_id, **file_codec.decode_file(payload, target, limits)}
