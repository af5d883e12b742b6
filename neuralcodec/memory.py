"""In-memory coding: images (Pillow, numpy, torch) to the bytes of an .ncd file and back.

``compress`` writes exactly the bytes ``codec encode`` writes for the same image and options: both run
the image codec's ``encode_image`` on the same :class:`~neuralcodec.media.images.DecodedImage` (a Pillow
image follows the file policy: EXIF orientation, grayscale, alpha) and ``container.serialize``.
Only image-hyperprior files decode in memory; video and lossless files go through ``decode_file``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from neuralcodec import container
from neuralcodec.api import bound_codec, prepared_encoder
from neuralcodec.codecs.image.family import NAME as IMAGE_CODEC
from neuralcodec.codecs.registry import family, weights_for_payload
from neuralcodec.errors import InputError
from neuralcodec.limits import Limits
from neuralcodec.media.arrays import image_from_array
from neuralcodec.media.images import DecodedImage, from_pil, to_pil
from neuralcodec.pretrained import compact_models

if TYPE_CHECKING:
    import torch


def compress(image: Any, quality: float | None = None, model: str | None = None, limits: Limits | None = None,
             **options: Any) -> bytes | list[bytes]:
    """The .ncd bytes of ``image``: a Pillow image, a numpy array (H, W) or (H, W, C), or a torch tensor
    (C, H, W); C is 1 (grey), 3 (RGB) or 4 (RGBA); pixels uint8 0-255 or float in [0, 1]. A batch, a
    numpy array (N, H, W, C) or a tensor (N, C, H, W), gives a list: one file's bytes per image.
    ``model``: an image model id or .safetensors path (default: the default image model); ``options``:
    the image family's (``refine_steps``, ``verify``, ``device``)."""
    limits = limits or Limits()
    images, batch = _decoded_images(image, limits.max_pixels)
    codec, encode_options = prepared_encoder(model, IMAGE_CODEC, {"quality": quality, "limits": limits, **options})
    files = []
    for decoded in images:
        result = codec.encode_image(decoded, encode_options)
        files.append(container.serialize(result.payload, result.compact_code))
    return files if batch else files[0]


def decompress(data: bytes, model: str | None = None, device: str = "cpu", limits: Limits | None = None) -> Image.Image:
    """The image of an image-hyperprior .ncd file's bytes, as Pillow writes it on decoding: RGB, L for a
    grey input, RGBA / LA with the input's exact alpha. ``model``: the weights, when not a shipped model."""
    return to_pil(_decoded(data, model, device, limits or Limits()))


def decompress_batch(files: Sequence[bytes], model: str | None = None, device: str = "cpu",
                     limits: Limits | None = None) -> "torch.Tensor":
    """Inverse of ``compress`` on a batch tensor: float32 (N, C, H, W) in [0, 1] (8-bit values, as decoded
    files hold); the images must share their size and channel count."""
    import torch

    if isinstance(files, (bytes, bytearray, memoryview)) or len(files) == 0:
        raise InputError("decompress_batch takes a non-empty list of .ncd files' bytes")
    arrays = [np.asarray(to_pil(_decoded(data, model, device, limits or Limits()))) for data in files]
    arrays = [a[..., None] if a.ndim == 2 else a for a in arrays]
    if len({a.shape for a in arrays}) > 1:
        raise InputError(f"the images differ in shape ({', '.join(sorted({str(a.shape) for a in arrays}))}), "
                         f"a batch needs one: decompress them one by one")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0


def _decoded(data: bytes, model: str | None, device: str, limits: Limits) -> DecodedImage:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError(f"expected the bytes of an .ncd file, got {type(data).__name__} (for a path use "
                         f"neuralcodec.decode_file)")
    payload = container.read(bytes(data), limits, compact_models())
    if payload.codec != IMAGE_CODEC:
        raise InputError(f"this is a {payload.codec} file; only {IMAGE_CODEC} files decode in memory: "
                         f"use neuralcodec.decode_file(source, target) or `codec decode`")
    family(IMAGE_CODEC).check_header(payload, limits)
    return bound_codec(weights_for_payload(payload, model), device).decode_image(payload, limits)


def _decoded_images(image: Any, max_pixels: int) -> tuple[list[DecodedImage], bool]:
    """The images of ``image`` under the file policy, and whether it was a batch."""
    if isinstance(image, Image.Image):
        return [from_pil(image, max_pixels)], False
    array, channels_first = _as_array(image)
    if array.ndim == 4:
        if len(array) == 0:
            raise InputError("the batch is empty")
        return [from_pil(image_from_array(a, channels_first), max_pixels) for a in array], True
    return [from_pil(image_from_array(array, channels_first), max_pixels)], False


def _as_array(image: Any) -> tuple[np.ndarray, bool]:
    """A numpy view of ``image`` and whether its channels come first (torch tensors)."""
    import torch

    if isinstance(image, np.ndarray):
        return image, False
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        return (tensor.float() if tensor.is_floating_point() else tensor).numpy(), True
    hint = " (for a file use neuralcodec.encode_file)" if isinstance(image, (str, Path)) else ""
    raise InputError(f"expected a Pillow image, a numpy array or a torch tensor, got {type(image).__name__}{hint}")
