"""One interface over every image codec the evaluation sweeps: learned (registry) and classical.

An adapter has a ``name``, its ``knob`` (what the quality value means: JPEG quality, CRF, Butteraugli
distance, rate level...), default ``qualities`` (values of that knob), ``check_quality(quality)``,
``encode(image, quality) -> bytes`` for an ``H x W x 3`` uint8 image, ``decode(bytes) -> image`` and
``unavailable_reason()`` (None when it can run). The Pillow codecs of :mod:`neuralcodec.eval.classical`
already have this shape; :class:`LearnedImageAdapter` wraps any registered learned image model, and
:mod:`neuralcodec.eval.ffmpeg_codecs` adds the ffmpeg-backed ones.
"""

from __future__ import annotations

import re
from typing import Protocol

import numpy as np
import torch

from neuralcodec import container
from neuralcodec.codecs.image.codec import ImageHyperpriorCodec, to_uint8_image
from neuralcodec.codecs.registry import load_codec
from neuralcodec.errors import InputError, UnknownModelError
from neuralcodec.eval.classical import CLASSICAL_CODECS
from neuralcodec.pretrained import compact_models, default_model


class ImageCodecAdapter(Protocol):
    """What the evaluation runner needs from a codec."""

    name: str
    knob: str
    """What a quality value is for this codec (``quality``, ``CRF``, ``Butteraugli distance``...)."""
    qualities: tuple[float, ...]
    """Default settings of the codec's own knob, in any order."""

    def check_quality(self, quality: float) -> None:
        """Raise InputError unless ``quality`` is a value of the knob."""

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        """The compressed bytes of an ``H x W x 3`` uint8 image (headers included)."""

    def decode(self, data: bytes) -> np.ndarray:
        """The decoded ``H x W x 3`` uint8 image."""

    def unavailable_reason(self) -> str | None:
        """Why this codec cannot run here, or None."""


REFINE_SUFFIX = re.compile(r"^(?P<model>.+)\+refine(?P<steps>\d+)$")
"""``MODEL+refineN``: a learned model whose encoder refines the latents with N steps (``--refine N``)."""


def refined_model_name(model_id: str, refine_steps: int) -> str:
    """How a learned model's results are named: its id, plus ``+refineN`` when the encoder refines
    latents (the form :data:`REFINE_SUFFIX` reads back)."""
    return f"{model_id}+refine{refine_steps}" if refine_steps else model_id


class LearnedImageAdapter:
    """A learned image model from the registry (shipped id or weights path); quality = its rate level.
    ``refine_steps`` > 0 encodes with latent refinement (named ``<model id>+refine<N>``)."""

    knob = "rate level"

    def __init__(self, model: str, refine_steps: int = 0) -> None:
        codec = load_codec(model)
        if not isinstance(codec, ImageHyperpriorCodec):
            raise InputError(f"{model} is a {codec.name} model, not a lossy image codec")
        self._codec = codec
        self._refine_steps = refine_steps
        self.name = refined_model_name(codec.model_id, refine_steps)
        self.qualities = tuple(float(q) for q in range(1, codec.levels + 1))

    def check_quality(self, quality: float) -> None:
        self._codec.level_of(quality)

    def encode(self, image: np.ndarray, quality: float) -> bytes:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"expected an H x W x 3 uint8 image, got {image.dtype} {image.shape}")
        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
        payload, _, _ = self._codec.compress(x, quality, reconstruct=False, refine_steps=self._refine_steps)
        return container.serialize(*self._codec.packed(payload))

    def decode(self, data: bytes) -> np.ndarray:
        return to_uint8_image(self._codec.decompress(container.read(data, compact_models=compact_models())))

    def unavailable_reason(self) -> str | None:
        return None


def image_adapter(name: str) -> ImageCodecAdapter:
    """The adapter called ``name``: a classical codec (jpeg, webp, avif, jpeg2000, jpegxl, hevc, av1) or a
    learned model id / weights path (``hyperprior`` is the default learned image model), optionally with
    ``+refineN`` (:data:`REFINE_SUFFIX`) for an encoder that refines the latents with N steps."""
    from neuralcodec.eval.ffmpeg_codecs import FFMPEG_CODECS

    if name in CLASSICAL_CODECS:
        return CLASSICAL_CODECS[name]
    if name in FFMPEG_CODECS:
        return FFMPEG_CODECS[name]
    refined = REFINE_SUFFIX.match(name)
    model, steps = (refined["model"], int(refined["steps"])) if refined else (name, 0)
    try:
        return LearnedImageAdapter(default_model("image-hyperprior").model_id if model == "hyperprior" else model, steps)
    except UnknownModelError:
        known = ", ".join(sorted({*CLASSICAL_CODECS, *FFMPEG_CODECS, "hyperprior"}))
        raise InputError(f"unknown codec {name!r}: use one of {known}, a shipped model id or a .safetensors path") from None

