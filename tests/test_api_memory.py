"""The in-memory API: neuralcodec.compress / decompress / decompress_batch give the bytes and images of
`codec encode` / `codec decode`, and refuse unusable arrays with clear InputErrors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import neuralcodec
from neuralcodec import api, container
from neuralcodec.api import decode_path, encode_path
from neuralcodec.errors import ContainerError, InputError, LimitExceededError
from neuralcodec.limits import Limits
from neuralcodec.pretrained import default_model, load_named_weights


def _file_bytes(source: Path, tiny_weights: Path, tmp_path: Path, **options) -> bytes:
    target = tmp_path / f"{source.stem}-reference.ncd"
    encode_path(source, target, model=str(tiny_weights), **options)
    return target.read_bytes()


def test_every_input_kind_gives_the_bytes_of_codec_encode(photo_png: Path, photo: np.ndarray, tiny_weights: Path,
                                                          tmp_path: Path):
    expected = _file_bytes(photo_png, tiny_weights, tmp_path, quality=2)
    tensor = torch.from_numpy(photo).permute(2, 0, 1).float() / 255.0
    inputs = {"pil": Image.open(photo_png), "uint8": photo, "float": photo / 255.0, "float32": photo.astype(np.float32) / 255,
              "tensor": tensor, "uint8 tensor": torch.from_numpy(photo).permute(2, 0, 1)}
    for name, image in inputs.items():
        assert neuralcodec.compress(image, quality=2, model=str(tiny_weights)) == expected, name
    batch = neuralcodec.compress(torch.stack([tensor, tensor.flip(-1)]), quality=2, model=str(tiny_weights))
    assert isinstance(batch, list) and len(batch) == 2 and batch[0] == expected and batch[1] != expected
    assert neuralcodec.compress(photo[None], quality=2, model=str(tiny_weights)) == [expected]  # numpy (N, H, W, C)


@pytest.mark.parametrize("mode", ["L", "RGBA", "LA"])
def test_grey_and_alpha_follow_the_file_policy(photo: np.ndarray, tiny_weights: Path, tmp_path: Path, mode: str):
    image = Image.fromarray(photo).convert(mode)
    image.save(tmp_path / "in.png")
    expected = _file_bytes(tmp_path / "in.png", tiny_weights, tmp_path)
    data = neuralcodec.compress(image, model=str(tiny_weights))
    assert data == expected
    decoded = neuralcodec.decompress(data, model=str(tiny_weights))
    decode_path(tmp_path / "in-reference.ncd", tmp_path / "out.png", model=str(tiny_weights))
    written = Image.open(tmp_path / "out.png")
    assert decoded.mode == written.mode == mode
    assert np.array_equal(np.asarray(decoded), np.asarray(written))
    if "A" in mode:
        assert np.array_equal(np.asarray(decoded.getchannel("A")), np.asarray(image.getchannel("A")))


def test_arrays_of_one_and_four_channels(photo: np.ndarray, tiny_weights: Path):
    grey = photo[..., 0]
    assert neuralcodec.compress(grey, model=str(tiny_weights)) == neuralcodec.compress(grey[..., None],
                                                                                        model=str(tiny_weights))
    assert neuralcodec.decompress(neuralcodec.compress(grey, model=str(tiny_weights)), model=str(tiny_weights)).mode == "L"
    rgba = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 128, np.uint8)], axis=-1)
    decoded = neuralcodec.decompress(neuralcodec.compress(rgba, model=str(tiny_weights)), model=str(tiny_weights))
    assert decoded.mode == "RGBA" and np.all(np.asarray(decoded)[..., 3] == 128)


def test_decompress_batch_inverts_a_tensor_batch(photo: np.ndarray, tiny_weights: Path):
    tensor = torch.from_numpy(photo).permute(2, 0, 1).float() / 255.0
    files = neuralcodec.compress(torch.stack([tensor, tensor.flip(-2)]), model=str(tiny_weights))
    decoded = neuralcodec.decompress_batch(files, model=str(tiny_weights))
    assert decoded.shape == (2, 3, *photo.shape[:2]) and decoded.dtype == torch.float32
    for index, data in enumerate(files):
        one = np.array(neuralcodec.decompress(data, model=str(tiny_weights)))
        assert torch.equal(decoded[index], torch.from_numpy(one).permute(2, 0, 1).float() / 255.0)
    grey = neuralcodec.compress(photo[..., 0], model=str(tiny_weights))
    with pytest.raises(InputError, match="differ in shape"):
        neuralcodec.decompress_batch([files[0], grey], model=str(tiny_weights))
    with pytest.raises(InputError, match="non-empty list"):
        neuralcodec.decompress_batch(files[0], model=str(tiny_weights))


@pytest.mark.parametrize("image,match", [
    (np.full((8, 8, 3), 200.0), r"up to 200: for 0-255 values divide by 255"),
    (np.full((8, 8, 3), -0.5), r"in \[0, 1\]"),
    (np.full((8, 8, 3), np.nan), "NaN"),
    (np.zeros((8, 8, 2), np.uint8), "1 \\(grey\\), 3 \\(RGB\\) or 4 \\(RGBA\\) channels"),
    (np.zeros((3, 8, 8), np.uint8), r"is it \(C, H, W\)\?"),
    (torch.zeros(8, 8, 3), r"is it \(H, W, C\)\?"),
    (np.zeros((0, 8, 3), np.uint8), "empty"),
    (np.zeros((0, 8, 8, 3), np.uint8), "batch is empty"),
    (np.zeros((8, 8, 3), np.int32) + 300, "0..255"),
    (np.zeros((8, 8, 3), bool), "dtype bool"),
    (np.zeros((2, 2, 8, 8, 3), np.uint8), "shape"),
    ("photo.png", "encode_file"),
])
def test_unusable_inputs_are_input_errors(image, match: str, tiny_weights: Path):
    with pytest.raises(InputError, match=match):
        neuralcodec.compress(image, model=str(tiny_weights))


def test_limits_pass_through(photo: np.ndarray, tiny_weights: Path):
    small = Limits(max_pixels=100)
    with pytest.raises(LimitExceededError):
        neuralcodec.compress(photo, model=str(tiny_weights), limits=small)
    data = neuralcodec.compress(photo, model=str(tiny_weights))
    with pytest.raises(LimitExceededError):
        neuralcodec.decompress(data, model=str(tiny_weights), limits=small)


def test_decompress_refuses_what_is_not_one_image(photo: np.ndarray, tiny_weights: Path):
    with pytest.raises(InputError, match="decode_file"):
        neuralcodec.decompress("photo.ncd")
    video = container.write(container.Payload("video-st", "video-st-vr9-n96", b"", {"frames": 3}, {"frames": b""}))
    with pytest.raises(InputError, match="video-st file; only image-hyperprior files decode in memory"):
        neuralcodec.decompress(video)
    data = neuralcodec.compress(photo, model=str(tiny_weights))
    with pytest.raises(ContainerError):
        neuralcodec.decompress(data[:-3], model=str(tiny_weights))
    with pytest.raises(InputError, match="not image-hyperprior"):
        neuralcodec.compress(photo, model="hclt-mnist")


def test_the_default_model_writes_compact_files_and_a_codec_is_built_once(photo: np.ndarray, tmp_path: Path):
    """No model: the default image model, as `codec encode` picks it; the second call reuses its codec."""
    Image.fromarray(photo[:64, :64]).save(tmp_path / "small.png")
    encode_path(tmp_path / "small.png", tmp_path / "small.ncd", quality=2)
    data = neuralcodec.compress(photo[:64, :64], quality=2)
    assert data == (tmp_path / "small.ncd").read_bytes() and data[:2] == container.COMPACT_MAGIC
    weights = load_named_weights(default_model("image-hyperprior").model_id)
    assert api.bound_codec(weights, "cpu") is api.bound_codec(weights, "cpu")
    assert neuralcodec.decompress(data).size == (64, 64)


def test_load_gives_the_default_image_codec():
    codec = neuralcodec.load()
    assert codec.name == "image-hyperprior" and codec.model_id == default_model("image-hyperprior").model_id
