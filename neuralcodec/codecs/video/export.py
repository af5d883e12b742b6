"""Turn a trained video model into a shippable safetensors weights file (with the coding tables of both
its image model and its prior)."""

from __future__ import annotations

from pathlib import Path

from neuralcodec.codecs.common.weights import rounded_to_fp16
from neuralcodec.codecs.image.reference import save_without_shipped_image
from neuralcodec.codecs.video.codec import VideoCodec
from neuralcodec.codecs.video.model import SpatiotemporalVideoModel


def export_video_model(model: SpatiotemporalVideoModel, path: str | Path, model_id: str,
                       image_model_id: str | None = None) -> str:
    """Write a video model (image model + spatiotemporal prior) as fp16 safetensors with the z tables of
    both; returns the file's sha256.

    With ``image_model_id`` (a shipped image model whose weights the video model's image part equals
    exactly), the file names that model and its sha256 instead of holding a copy of its tensors.
    """
    model = rounded_to_fp16(model)
    return save_without_shipped_image(path, VideoCodec.export_tensors(model), VideoCodec.name, model_id,
                                      model.config.to_dict(), model.config.image, image_model_id, "video model")
