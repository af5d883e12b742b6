"""Weights files that name a shipped image hyperprior (id + sha256) instead of holding a copy of it: a
model built on a frozen hyperprior (the video codec's, the image context model) ships only its own
tensors, and loading checks that the installed hyperprior is the one it was trained on."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from neuralcodec.codecs.image.model import HyperpriorConfig
from neuralcodec.errors import InputError, ModelMismatchError
from neuralcodec.pretrained import LoadedWeights, load_pretrained, save_weights

IMAGE_REFERENCE_KEY = "image_weights"
"""Config entry of a weights file that names (id, sha256) the shipped image model it uses."""
IMAGE_PREFIX = "image."
"""Prefix of the image model's tensors in the state dict of a model built on one."""


def save_without_shipped_image(path: str | Path, tensors: dict[str, torch.Tensor], codec: str, model_id: str,
                               config: dict, image_config: HyperpriorConfig, image_model_id: str | None,
                               owner: str, half: bool = True) -> str:
    """:func:`save_weights` of ``tensors`` (fp16 with ``half``); with ``image_model_id``, less the image model's
    tensors (checked equal to that shipped model's), which ``config`` names instead. Returns the file's sha256."""
    if image_model_id is not None:
        config = {**config, IMAGE_REFERENCE_KEY: drop_shipped_image_tensors(tensors, image_config, image_model_id, owner)}
    return save_weights(path, tensors, codec=codec, model_id=model_id, config=config, half=half)


def drop_shipped_image_tensors(tensors: dict[str, torch.Tensor], config: HyperpriorConfig, image_model_id: str,
                               owner: str) -> dict:
    """Remove the image model's tensors from ``tensors`` (in place) after checking they equal those of the
    shipped ``image_model_id``; returns the config entry naming it. ``owner`` names the model in errors."""
    shipped = load_pretrained(image_model_id)
    if HyperpriorConfig.from_dict(shipped.config) != config:
        raise InputError(f"the {owner}'s image config differs from {image_model_id!r}'s")
    own = {key[len(IMAGE_PREFIX):]: tensors.pop(key) for key in list(tensors) if key.startswith(IMAGE_PREFIX)}
    differing = sorted(key for key in own.keys() | shipped.tensors.keys()
                       if key not in own or key not in shipped.tensors
                       or not own[key].to(shipped.tensors[key].dtype).equal(shipped.tensors[key]))
    if differing:
        raise InputError(f"the {owner}'s image weights differ from {image_model_id!r}'s "
                         f"({len(differing)} tensors, e.g. {differing[0]}); export them with the file instead")
    return {"model_id": image_model_id, "sha256": shipped.sha256}


def with_referenced_image(weights: LoadedWeights, config: HyperpriorConfig, owner: str) -> LoadedWeights:
    """``weights`` completed by the tensors of the shipped image model its config names, if it names one
    (checked against the recorded sha256 and ``config``)."""
    reference = weights.config.get(IMAGE_REFERENCE_KEY)
    if reference is None:
        return weights
    image = load_pretrained(reference["model_id"])
    if image.sha256 != reference["sha256"]:
        raise ModelMismatchError(f"the {owner} was trained on image model {reference['model_id']!r} with "
                                 f"sha256 {reference['sha256'][:16]}..., the installed one has {image.sha256[:16]}...")
    if HyperpriorConfig.from_dict(image.config) != config:
        raise ModelMismatchError(f"image model {reference['model_id']!r} does not have the {owner}'s image config")
    tensors = {IMAGE_PREFIX + key: value for key, value in image.tensors.items()}
    return dataclasses.replace(weights, tensors={**tensors, **weights.tensors})
