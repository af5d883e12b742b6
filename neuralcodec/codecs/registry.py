"""The codec families, one line each, and how a codec + weights is picked for an input or a payload.

Adding a family: a folder under ``codecs/`` whose ``family.py`` defines a :class:`~neuralcodec.codecs.base.Family`,
and one line in :data:`FAMILIES`.
"""

from __future__ import annotations

from pathlib import Path

from neuralcodec.codecs.base import SNIFF_NO, Codec, Family
from neuralcodec.codecs.image.family import FAMILY as IMAGE
from neuralcodec.codecs.lossless.family import FAMILY as LOSSLESS
from neuralcodec.codecs.lossless.image_family import FAMILY as LOSSLESS_IMAGE
from neuralcodec.codecs.video.family import FAMILY as VIDEO
from neuralcodec.codecs.video.mc_family import FAMILY as VIDEO_MC
from neuralcodec.container import Payload
from neuralcodec.errors import InputError, ModelMismatchError, UnknownModelError
from neuralcodec.pretrained import LoadedWeights, default_model, is_retired, load_named_weights, load_pretrained

FAMILIES: list[Family] = [
    IMAGE,
    VIDEO_MC,
    VIDEO,
    LOSSLESS,
    LOSSLESS_IMAGE,
]
LOSSLESS_FAMILIES = (LOSSLESS, LOSSLESS_IMAGE)
"""The families that reproduce their input exactly (what ``--lossless`` chooses among)."""


def family(name: str) -> Family:
    """The family registered as ``name``."""
    for candidate in FAMILIES:
        if candidate.name == name:
            return candidate
    raise UnknownModelError(f"unknown codec {name!r} (known: {', '.join(sorted(f.name for f in FAMILIES))})")


def family_for_input(path: Path) -> Family:
    """The family that claims ``path`` most strongly (content over suffix; the earlier family on a tie)."""
    claims = [(candidate.sniff(path), -index, candidate) for index, candidate in enumerate(FAMILIES)]
    strength, _, best = max(claims, key=lambda claim: claim[:2])
    if strength == SNIFF_NO:
        what = "folder" if path.is_dir() else f"{path.suffix or 'suffix-less'} file"
        raise InputError(f"no codec encodes this {what} by default; pass --codec "
                         f"({', '.join(f.name for f in FAMILIES)}) or --model")
    return best


def lossless_family_for_input(path: Path, codec: str | None = None) -> Family:
    """The lossless family for ``path`` (``codec encode --lossless``): lossless-pc for what it claims (IDX files,
    images and folders of a shipped grey model's size), lossless-image for any other image; ``codec``, when
    given, must name a lossless family."""
    if codec is not None:
        if codec not in {f.name for f in LOSSLESS_FAMILIES}:
            raise InputError(f"--lossless with --codec {codec}: that codec is lossy "
                             f"(lossless ones: {', '.join(f.name for f in LOSSLESS_FAMILIES)})")
        return family(codec)
    return LOSSLESS if LOSSLESS.sniff(path) != SNIFF_NO else LOSSLESS_IMAGE


def resolve_weights(model: str | None, codec: str | None) -> LoadedWeights:
    """Weights the user names: a shipped model id, a path to a .safetensors file, or the codec's default model."""
    if model is not None:
        return load_named_weights(model, codec)
    if codec is None:
        raise InputError("pass a codec or a model")
    return load_pretrained(default_model(codec).model_id)


def load_codec(model: str | None = None, codec: str | None = None, device: str = "cpu") -> Codec:
    """A ready codec: ``model`` (id or weights path) and/or ``codec`` family name."""
    return build_codec(resolve_weights(model, codec), device)


def build_codec(weights: LoadedWeights, device: str = "cpu") -> Codec:
    """The codec of ``weights``' family bound to them, on ``device`` (checked first: InputError for a device
    that does not exist or is not available here)."""
    return family(weights.codec).load_codec_class().from_weights(weights, checked_device(device))


def checked_device(name: str) -> str:
    """``name`` when it is a torch device this machine has; InputError saying what is wrong otherwise."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {name!r} (use cpu, or cuda / cuda:N where a GPU is present)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r}: no CUDA GPU is available on this machine; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"device {name!r} is not supported (use cpu or cuda)")
    return name


def weights_for_payload(payload: Payload, model: str | None = None) -> LoadedWeights:
    """The weights that decode ``payload``: the shipped model it names, or ``model`` when the user gives one;
    the weights' hash must match the file's. A file's model id is data: it is never opened as a path."""
    family(payload.codec)  # an unknown family fails before any weights are looked up
    if model is not None:
        weights = resolve_weights(model, payload.codec)
    else:
        try:
            weights = load_pretrained(payload.model_id)
        except UnknownModelError as error:
            if is_retired(payload.model_id):
                raise  # its message already says how to get the weights
            raise UnknownModelError(f"{error}; if you have its weights, pass them with --model") from None
    if weights.codec != payload.codec:
        raise ModelMismatchError(f"the file is a {payload.codec} file, but model {weights.model_id!r} is a "
                                 f"{weights.codec} model")
    if payload.weights_hash and weights.weights_hash != payload.weights_hash:
        raise ModelMismatchError(
            f"the file was encoded with weights {payload.weights_hash.hex()} of model {payload.model_id!r}, "
            f"but the available weights are {weights.weights_hash.hex()}"
        )
    return weights
