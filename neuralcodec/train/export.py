"""Turn a trained model into a shippable safetensors weights file (with its coding tables)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from neuralcodec.codecs.image_codec import ImageHyperpriorCodec
from neuralcodec.codecs.image_hyperprior import ImageHyperprior
from neuralcodec.codecs.video_codec import VideoCodec
from neuralcodec.codecs.video_model import SpatiotemporalVideoModel
from neuralcodec.pretrained import save_weights


def export_image_hyperprior(model: ImageHyperprior, path: str | Path, model_id: str) -> str:
    """Write ``model`` as fp16 safetensors plus integer z tables; returns the file's sha256.

    The model is first rounded to fp16 in place, so that the coding tables are built from exactly the
    weights that are shipped and every decoder loading the file gets the same tables.
    """
    return _export(model, ImageHyperpriorCodec, path, model_id)


def export_video_model(model: SpatiotemporalVideoModel, path: str | Path, model_id: str) -> str:
    """Write a video model (image model + spatiotemporal prior) like :func:`export_image_hyperprior`,
    with the z tables of both; returns the file's sha256."""
    return _export(model, VideoCodec, path, model_id)


def _export(model: nn.Module, codec: type[ImageHyperpriorCodec] | type[VideoCodec], path: str | Path,
            model_id: str) -> str:
    model = model.cpu().eval()
    model.half().float()
    return save_weights(path, codec.export_tensors(model), codec=codec.name, model_id=model_id,
                        config=model.config.to_dict())
