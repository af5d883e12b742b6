"""Codec families by name, and how a codec + weights is picked for an input file or an .ncd payload."""

from __future__ import annotations

from pathlib import Path

from neuralcodec import container
from neuralcodec.codecs.base import FileCodec
from neuralcodec.codecs.idx import is_idx_path
from neuralcodec.codecs.image_codec import ImageHyperpriorCodec
from neuralcodec.codecs.lossless_codec import LosslessCircuitCodec, probe_gray_size
from neuralcodec.codecs.video_codec import VideoCodec
from neuralcodec.container import CompactModel, Payload
from neuralcodec.errors import InputError, ModelMismatchError, UnknownModelError
from neuralcodec.pretrained import LoadedWeights, default_model, list_models, load_pretrained, load_weights_file

FAMILIES: dict[str, type] = {cls.name: cls for cls in (ImageHyperpriorCodec, VideoCodec, LosslessCircuitCodec)}


def family(name: str) -> type:
    """The codec class registered as ``name``."""
    if name not in FAMILIES:
        raise UnknownModelError(f"unknown codec {name!r} (known: {', '.join(sorted(FAMILIES))})")
    return FAMILIES[name]


def family_for_input(path: Path) -> str:
    """The default codec family for an input: IDX files, folders and 8-bit grayscale images of a shipped
    lossless model's size go to the lossless codec; other files by suffix."""
    lossless = LosslessCircuitCodec.name
    if path.is_dir() or is_idx_path(path):
        return lossless
    sizes = {(m.config.get("height"), m.config.get("width")) for m in list_models() if m.codec == lossless}
    if probe_gray_size(path) in sizes:
        return lossless
    suffix = path.suffix.lower()
    for name, cls in FAMILIES.items():
        if suffix in cls.suffixes:
            return name
    raise InputError(f"no codec encodes {suffix or 'suffix-less'} files by default; pass --codec or --model")


def names_weights_file(model: str) -> bool:
    """Whether ``model`` (as given to ``--model`` / ``--init-from``) is a weights file, not a shipped id."""
    return model.endswith(".safetensors") or Path(model).is_file()


def resolve_weights(model: str | None, codec: str | None) -> LoadedWeights:
    """Weights from a shipped model id, a path to a .safetensors file, or the codec's default model."""
    if model is not None:
        weights = load_weights_file(model) if names_weights_file(model) else load_pretrained(model)
        if codec is not None and weights.codec != codec:
            raise InputError(f"model {weights.model_id!r} is a {weights.codec} model, not {codec}")
        return weights
    if codec is None:
        raise InputError("pass a codec or a model")
    return load_pretrained(default_model(codec).model_id)


def load_codec(model: str | None = None, codec: str | None = None, device: str = "cpu") -> FileCodec:
    """A ready codec: ``model`` (id or weights path) and/or ``codec`` family name."""
    weights = resolve_weights(model, codec)
    return family(weights.codec).from_weights(weights, device)


def codec_for_payload(payload: Payload, model: str | None = None, device: str = "cpu") -> FileCodec:
    """The codec that decodes ``payload``: its recorded model, or ``model`` when given; hashes must match."""
    family(payload.codec)
    weights = resolve_weights(model or payload.model_id, payload.codec)
    if payload.weights_hash and weights.weights_hash != payload.weights_hash:
        raise ModelMismatchError(
            f"the file was encoded with weights {payload.weights_hash.hex()} of model {payload.model_id!r}, "
            f"but the available weights are {weights.weights_hash.hex()}"
        )
    return family(payload.codec).from_weights(weights, device)


def compact_models() -> dict[int, CompactModel]:
    """Shipped models that have a compact-file code, by code."""
    return {m.compact_code: CompactModel(m.codec, m.model_id, m.weights_hash)
            for m in list_models() if m.compact_code is not None}


def compact_code(model_id: str, weights_hash: bytes) -> int | None:
    """The compact code of a shipped model (None for other models or changed weights)."""
    for code, model in compact_models().items():
        if model.model_id == model_id and model.weights_hash == weights_hash:
            return code
    return None


def serialize(payload: Payload, compact: bool = False) -> bytes:
    """The file bytes of ``payload``: the compact form when asked for and the model has a compact code
    (the payload must then be in its codec's compact layout), else a regular .ncd file."""
    code = compact_code(payload.model_id, payload.weights_hash) if compact else None
    return container.write(payload) if code is None else container.write_compact(payload, code)
