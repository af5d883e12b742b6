"""Turn a trained video model into a shippable safetensors weights file (with the coding tables of both
its image model and its prior)."""

from __future__ import annotations

from pathlib import Path

from neuralcodec.codecs.common.weights import rounded_to_fp16
from neuralcodec.codecs.image.model import HyperpriorConfig
from neuralcodec.codecs.video.codec import IMAGE_PREFIX, IMAGE_REFERENCE_KEY, VideoCodec
from neuralcodec.codecs.video.model import SpatiotemporalVideoModel
from neuralcodec.errors import InputError
from neuralcodec.pretrained import load_pretrained, save_weights


def export_video_model(model: SpatiotemporalVideoModel, path: str | Path, model_id: str,
                       image_model_id: str | None = None) -> str:
    """Write a video model (image model + spatiotemporal prior) as fp16 safetensors with the z tables of
    both; returns the file's sha256.

    With ``image_model_id`` (a shipped image model whose weights the video model's image part equals
    exactly), the file names that model and its sha256 instead of holding a copy of its tensors.
    """
    model = rounded_to_fp16(model)
    tensors = VideoCodec.export_tensors(model)
    config = model.config.to_dict()
    if image_model_id is not None:
        sha256 = _drop_shipped_image_tensors(tensors, model.config.image, image_model_id)
        config[IMAGE_REFERENCE_KEY] = {"model_id": image_model_id, "sha256": sha256}
    return save_weights(path, tensors, codec=VideoCodec.name, model_id=model_id, config=config)


def _drop_shipped_image_tensors(tensors: dict, config: HyperpriorConfig, image_model_id: str) -> str:
    """Remove the image model's tensors from ``tensors`` after checking they equal the shipped ones;
    returns the shipped file's sha256."""
    shipped = load_pretrained(image_model_id)
    if HyperpriorConfig.from_dict(shipped.config) != config:
        raise InputError(f"the video model's image config differs from {image_model_id!r}'s")
    own = {key[len(IMAGE_PREFIX):]: tensors.pop(key) for key in list(tensors) if key.startswith(IMAGE_PREFIX)}
    differing = sorted(key for key in own.keys() | shipped.tensors.keys()
                       if key not in own or key not in shipped.tensors
                       or not own[key].to(shipped.tensors[key].dtype).equal(shipped.tensors[key]))
    if differing:
        raise InputError(f"the video model's image weights differ from {image_model_id!r}'s "
                         f"({len(differing)} tensors, e.g. {differing[0]}); export them with the file instead")
    return shipped.sha256
