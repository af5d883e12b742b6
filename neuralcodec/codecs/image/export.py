"""Turn a trained image model into a shippable safetensors weights file (with its coding tables)."""

from __future__ import annotations

from pathlib import Path

from neuralcodec.codecs.common.weights import rounded_to_fp16
from neuralcodec.codecs.image.codec import ImageHyperpriorCodec
from neuralcodec.codecs.image.model import ImageHyperprior
from neuralcodec.pretrained import save_weights


def export_image_hyperprior(model: ImageHyperprior, path: str | Path, model_id: str, half: bool = True) -> str:
    """Write ``model`` as fp16 (``half``) or float32 safetensors plus integer z tables; returns the file's sha256.

    The model is first rounded to fp16 in place (when ``half``), so that the coding tables are built from
    exactly the weights that are shipped and every decoder loading the file gets the same tables.
    """
    model = rounded_to_fp16(model) if half else model.cpu().eval()
    return save_weights(path, ImageHyperpriorCodec.export_tensors(model), codec=ImageHyperpriorCodec.name,
                        model_id=model_id, config=model.config.to_dict(), half=half)
