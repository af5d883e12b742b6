"""Codec families by name, and how a codec + weights is picked for an input file or an .ncd payload."""

from __future__ import annotations

from pathlib import Path

from neuralcodec.codecs.base import FileCodec
from neuralcodec.codecs.image_codec import ImageHyperpriorCodec
from neuralcodec.container import Payload
from neuralcodec.errors import InputError, ModelMismatchError, UnknownModelError
from neuralcodec.pretrained import LoadedWeights, default_model, load_pretrained, load_weights_file

FAMILIES: dict[str, type] = {cls.name: cls for cls in (ImageHyperpriorCodec,)}


def family(name: str) -> type:
    """The codec class registered as ``name``."""
    if name not in FAMILIES:
        raise UnknownModelError(f"unknown codec {name!r} (known: {', '.join(sorted(FAMILIES))})")
    return FAMILIES[name]


def family_for_input(path: Path) -> str:
    """The default codec family for an input file, from its suffix."""
    suffix = path.suffix.lower()
    for name, cls in FAMILIES.items():
        if suffix in cls.suffixes:
            return name
    raise InputError(f"no codec encodes {suffix or 'suffix-less'} files by default; pass --codec or --model")


def resolve_weights(model: str | None, codec: str | None) -> LoadedWeights:
    """Weights from a shipped model id, a path to a .safetensors file, or the codec's default model."""
    if model is not None:
        if model.endswith(".safetensors") or Path(model).is_file():
            weights = load_weights_file(model)
        else:
            weights = load_pretrained(model)
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
