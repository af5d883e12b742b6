"""Turn a trained image model into a shippable safetensors weights file (with its coding tables)."""

from __future__ import annotations

from pathlib import Path

from neuralcodec.codecs.common.weights import rounded_to_fp16
from neuralcodec.codecs.image.codec import ImageHyperpriorCodec
from neuralcodec.codecs.image.context import ImageContextModel
from neuralcodec.codecs.image.model import ImageHyperprior
from neuralcodec.codecs.image.reference import save_without_shipped_image


def export_image_hyperprior(model: ImageHyperprior | ImageContextModel, path: str | Path, model_id: str,
                            image_model_id: str | None = None, half: bool = True) -> str:
    """Write ``model`` as fp16 (``half``) or float32 safetensors plus integer z tables; returns the file's sha256.

    The model is first rounded to fp16 in place (when ``half``), so that the coding tables are built from
    exactly the weights that are shipped and every decoder loading the file gets the same tables. A context
    model trained on the shipped hyperprior ``image_model_id`` names that model instead of holding a copy of it.
    """
    model = rounded_to_fp16(model) if half else model.cpu().eval()
    image_config = model.config.image if isinstance(model, ImageContextModel) else model.config
    return save_without_shipped_image(path, ImageHyperpriorCodec.export_tensors(model), ImageHyperpriorCodec.name,
                                      model_id, model.config.to_dict(), image_config, image_model_id, "context model",
                                      half=half)
