"""Turn a trained motion-compensated video model into a shippable safetensors weights file."""

from __future__ import annotations

from pathlib import Path

from neuralcodec.codecs.common.weights import rounded_to_fp16
from neuralcodec.codecs.image.reference import save_without_shipped_image
from neuralcodec.codecs.video.mc_codec import MotionCompensatedVideoCodec
from neuralcodec.codecs.video.mc_model import MotionCompensatedVideoModel



def export_mc_model(model: MotionCompensatedVideoModel, path: str | Path, model_id: str,
                    image_model_id: str | None = None) -> str:
    """Write the model as fp16 safetensors with the hyper-latent tables of both parts; returns the sha256.
    With ``image_model_id`` (the shipped image model its I-frame part equals), the file names that model
    instead of holding a copy."""
    model = rounded_to_fp16(model)
    model.image.entropy_bottleneck.build_tables()
    model.residual.entropy_bottleneck.build_tables()
    return save_without_shipped_image(path, model.state_dict(), MotionCompensatedVideoCodec.name, model_id, model.config.to_dict(),
                                      model.config.image, image_model_id, "video model")
