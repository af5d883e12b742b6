"""The hyperprior image codec: exact round trips, rate honesty, determinism, image I/O policy."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec import container
from neuralcodec.api import decode_path, encode_path
from neuralcodec.codecs.image import compact as image_compact
from neuralcodec.codecs.image.latent_coding import picture_extent
from neuralcodec.codecs.image.model import HyperpriorConfig, ImageHyperprior, pad_to_multiple
from neuralcodec.codecs.registry import load_codec
from neuralcodec.entropy import SymbolEncoder
from neuralcodec.errors import CorruptFileError, InputError, LimitExceededError, ModelMismatchError
from neuralcodec.pretrained import compact_models, list_models
from neuralcodec.train.losses import bits_per_pixel


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0


@pytest.mark.parametrize("quality", [1.0, 1.5, 2.0])
def test_decode_reproduces_encoder_reconstruction_bit_exactly(tiny_weights: Path, photo: np.ndarray, quality: float):
    codec = load_codec(str(tiny_weights))
    payload, x_hat, _ = codec.compress(_tensor(photo), quality)
    decoded = codec.decompress(container.read(container.write(payload)))
    assert decoded.shape == (1, 3, *photo.shape[:2])
    assert torch.equal(decoded, x_hat)


def test_encoder_reconstruction_matches_model_forward(tiny_weights: Path, photo: np.ndarray):
    codec = load_codec(str(tiny_weights))
    x = _tensor(photo)
    _, x_hat, _ = codec.compress(x, 2.0)
    with torch.no_grad():
        forward = codec.model(pad_to_multiple(x), 1.0)["x_hat"][..., : photo.shape[0], : photo.shape[1]].clamp(0, 1)
    # Same latents up to the 1/256 mean grid of the deterministic path.
    assert torch.allclose(x_hat, forward, atol=2e-2)
    assert float((x_hat - forward).abs().mean()) < 1e-3


def test_file_rate_close_to_estimated_rate(tiny_weights: Path, photo: np.ndarray):
    codec = load_codec(str(tiny_weights))
    x = _tensor(photo)
    payload, _, stats = codec.compress(x, 2.0)
    with torch.no_grad():
        out = codec.model(pad_to_multiple(x), 1.0)
    rows, columns = picture_extent(*photo.shape[:2])  # the file codes only the latent over the picture
    likelihoods = {"y": out["likelihoods"]["y"][..., :rows, :columns], "z": out["likelihoods"]["z"]}
    estimated_bits = float(bits_per_pixel(likelihoods, 1)[0])
    stream_bits = 8 * len(payload.sections["bits"])
    assert payload.metadata["cropped_latent"] is True
    assert stats["ideal_bits"] == pytest.approx(estimated_bits, rel=0.03)
    assert stream_bits <= stats["ideal_bits"] * 1.01 + 64


def test_cropped_latent_codes_less_and_only_where_the_picture_is_padded(tiny_weights: Path, photo: np.ndarray):
    codec = load_codec(str(tiny_weights))
    x = _tensor(photo)
    cropped, x_hat, _ = codec.compress(x, 2.0)
    level = codec.level_of(2.0)
    y = codec.analyze(x, level)
    encoder = SymbolEncoder()
    codec.encode_latent(y, level, encoder)  # the whole padded latent, as files of earlier versions
    assert len(cropped.sections["bits"]) < 0.8 * len(encoder.finish())
    assert torch.equal(codec.decompress(cropped), x_hat)
    whole, _, _ = codec.compress(x[..., :64, :128], 2.0)  # sides that are multiples of 64: nothing to crop
    assert "cropped_latent" not in whole.metadata


def test_invalid_cropped_latent_flag_is_a_corrupt_file(tiny_weights: Path, photo: np.ndarray):
    codec = load_codec(str(tiny_weights))
    payload, _, _ = codec.compress(_tensor(photo), 2.0)
    payload.metadata["cropped_latent"] = 1
    with pytest.raises(CorruptFileError, match="cropped_latent"):
        codec.decompress(payload)


def test_decoding_is_independent_of_thread_count(tiny_weights: Path, photo: np.ndarray):
    codec = load_codec(str(tiny_weights))
    threads = torch.get_num_threads()
    # An odd-sized crop too: its small latent is where BLAS would split sums across threads.
    for image in (photo, photo[:75, :107]):
        try:
            torch.set_num_threads(1)
            payload, x_hat, _ = codec.compress(_tensor(np.ascontiguousarray(image)), 1.5)
            for count in (2, 3, 4):
                torch.set_num_threads(count)
                assert torch.equal(codec.decompress(payload), x_hat)
        finally:
            torch.set_num_threads(threads)


def test_corrupted_stream_is_detected(tiny_weights: Path, photo: np.ndarray):
    codec = load_codec(str(tiny_weights))
    payload, _, _ = codec.compress(_tensor(photo), 1.0)
    bits = bytearray(payload.sections["bits"])
    bits[len(bits) // 2] ^= 0xFF
    payload.sections["bits"] = bytes(bits)
    payload.metadata["index_crc"] ^= 1
    with pytest.raises(CorruptFileError):
        codec.decompress(payload)


def test_quality_out_of_range(tiny_weights: Path, photo: np.ndarray):
    codec = load_codec(str(tiny_weights))
    with pytest.raises(InputError, match="quality"):
        codec.compress(_tensor(photo), 3.0)


def test_higher_quality_spends_more_bits(tiny_weights: Path, photo_png: Path, tmp_path: Path):
    sizes = [encode_path(photo_png, tmp_path / f"q{q}.ncd", model=str(tiny_weights), quality=q)["bytes"] for q in (1, 2)]
    assert sizes[0] < sizes[1]


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "P", "I;16"])
def test_file_round_trip_keeps_layout(tiny_weights: Path, photo: np.ndarray, tmp_path: Path, mode: str):
    image = Image.fromarray(photo)
    if mode == "I;16":
        image = Image.fromarray((np.asarray(image.convert("L"), dtype=np.uint16) * 257))
    elif mode in ("RGBA", "LA"):
        image = image.convert(mode)
        alpha = np.tile(np.linspace(0, 255, photo.shape[1], dtype=np.uint8), (photo.shape[0], 1))
        image.putalpha(Image.fromarray(alpha))
    else:
        image = image.convert(mode)
    source, ncd, out = tmp_path / "in.png", tmp_path / "x.ncd", tmp_path / "out.png"
    image.save(source)
    stats = encode_path(source, ncd, model=str(tiny_weights), verify=True)
    assert np.isfinite(stats["psnr_rgb"])  # --verify also raised if decoding were not bit-exact
    decode_path(ncd, out, model=str(tiny_weights))
    decoded = Image.open(out)
    assert decoded.size == image.size
    expected_mode = {"RGB": "RGB", "P": "RGB", "L": "L", "I;16": "L", "RGBA": "RGBA", "LA": "LA"}[mode]
    assert decoded.mode == expected_mode
    if mode in ("RGBA", "LA"):
        assert np.array_equal(np.asarray(decoded.getchannel("A")), np.asarray(image.getchannel("A")))


def test_exif_orientation_is_applied(tiny_weights: Path, photo: np.ndarray, tmp_path: Path):
    image = Image.fromarray(photo)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    source = tmp_path / "rotated.jpg"
    image.save(source, exif=exif.tobytes(), quality=95)
    stats = encode_path(source, tmp_path / "r.ncd", model=str(tiny_weights))
    assert (stats["width"], stats["height"]) == (photo.shape[0], photo.shape[1])


def test_tiny_image_round_trips(tiny_weights: Path, tmp_path: Path):
    source = tmp_path / "one.png"
    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(source)
    encode_path(source, tmp_path / "one.ncd", model=str(tiny_weights), verify=True)
    decode_path(tmp_path / "one.ncd", tmp_path / "one-out.png", model=str(tiny_weights))
    assert Image.open(tmp_path / "one-out.png").size == (1, 1)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` but carries almost no pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "content, error",
    [
        (b"", InputError),
        (b"this is not an image at all", InputError),
        ("truncated-png", InputError),
        ("huge-header", LimitExceededError),
    ],
)
def test_bad_inputs_give_clear_errors_and_no_output(tiny_weights: Path, photo_png: Path, tmp_path: Path, content, error):
    source = tmp_path / "bad.png"
    if content == "truncated-png":
        source.write_bytes(photo_png.read_bytes()[:300])
    elif content == "huge-header":
        source.write_bytes(_png_header_only(20000, 20000))
    else:
        source.write_bytes(content)
    target = tmp_path / "out.ncd"
    with pytest.raises(error):
        encode_path(source, target, model=str(tiny_weights))
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "photo.png"]


def test_decode_refuses_other_weights(tiny_weights: Path, photo_png: Path, tmp_path: Path):
    from neuralcodec.codecs.image.export import export_image_hyperprior

    encode_path(photo_png, tmp_path / "x.ncd", model=str(tiny_weights))
    other = ImageHyperprior(HyperpriorConfig(n=16, m=24, lambdas=(0.01, 0.05)))
    export_image_hyperprior(other, tmp_path / "other.safetensors", model_id="tiny-test")
    with pytest.raises(ModelMismatchError):
        decode_path(tmp_path / "x.ncd", tmp_path / "x.png", model=str(tmp_path / "other.safetensors"))
    assert not (tmp_path / "x.png").exists()


def test_encode_never_overwrites_its_input(tiny_weights: Path, photo_png: Path):
    before = photo_png.read_bytes()
    with pytest.raises(InputError):
        encode_path(photo_png, photo_png, model=str(tiny_weights))
    assert photo_png.read_bytes() == before


@pytest.mark.skipif(not any(m.codec == "image-hyperprior" for m in list_models()), reason="no shipped image model")
def test_shipped_model_rate_and_exactness_on_a_photo(photo: np.ndarray):
    model = next(m for m in list_models() if m.codec == "image-hyperprior")
    codec = load_codec(model.model_id)
    x = _tensor(photo)
    for quality in (1, codec.model.config.levels):
        payload, x_hat, stats = codec.compress(x, quality)
        assert torch.equal(codec.decompress(payload), x_hat)
        assert 8 * len(payload.sections["bits"]) <= stats["ideal_bits"] * 1.01 + 64


def test_compact_layout_round_trips_and_refuses_what_it_cannot_hold():
    from neuralcodec.codecs.image import compact as image_compact

    regular = container.Payload("image-hyperprior", "m", b"h" * 8,
                                {"height": 112, "width": 92, "level": 2.5, "index_crc": 0xDEADBEEF, "grayscale": True},
                                {"bits": b"\x01\x02\x03"})
    packed = image_compact.pack(regular)
    assert set(packed.sections) == {"stream"} and not packed.metadata
    assert len(packed.sections["stream"]) == 1 + 1 + 2 + 1 + 2 + 3  # 112 | 92 | 640 | flags | check | bits
    back = image_compact.unpack(packed)
    assert back.sections == regular.sections
    assert back.metadata == {"height": 112, "width": 92, "level": 2.5, "grayscale": True,
                             "index_crc": 0xBEEF, "index_crc_mask": 0xFFFF}
    assert image_compact.unpack(regular) is regular
    assert image_compact.pack(container.Payload("c", "m", b"", {**regular.metadata, "level": 1 / 3}, regular.sections)) is None
    with_alpha = container.Payload("c", "m", b"", regular.metadata, {**regular.sections, "alpha": b"x"})
    assert image_compact.pack(with_alpha) is None
    with pytest.raises(CorruptFileError):
        image_compact.unpack(container.Payload("c", "m", b"", {}, {"stream": b"\x70\x5c"}))


def test_models_with_a_compact_code_write_few_byte_headers(tiny_weights: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    from neuralcodec import api
    from neuralcodec.container import CompactModel
    from neuralcodec.pretrained import LoadedWeights

    codec = load_codec(str(tiny_weights))
    weights = CompactModel(codec.name, codec.model_id, codec.weights_hash)

    def give_code(code: int | None) -> None:  # as if the tiny model were shipped with (or without) a compact code
        monkeypatch.setattr(LoadedWeights, "compact_code", property(lambda self: code))

    give_code(9)
    monkeypatch.setattr(api, "compact_models", lambda: {9: weights})
    face = np.random.default_rng(0).integers(0, 256, (112, 92), dtype=np.uint8)
    Image.fromarray(face).save(tmp_path / "face.png")
    compact = encode_path(tmp_path / "face.png", tmp_path / "face.ncd", model=str(tiny_weights), quality=1)
    assert (tmp_path / "face.ncd").read_bytes()[:2] == container.COMPACT_MAGIC
    give_code(None)
    regular = encode_path(tmp_path / "face.png", tmp_path / "face-regular.ncd", model=str(tiny_weights), quality=1)
    assert regular["bytes"] - compact["bytes"] > 60  # the regular header's codec/model names, hash and metadata
    decode_path(tmp_path / "face.ncd", tmp_path / "a.png", model=str(tiny_weights))
    decode_path(tmp_path / "face-regular.ncd", tmp_path / "b.png", model=str(tiny_weights))
    a, b = np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png"))
    assert a.ndim == 2 and np.array_equal(a, b)  # grey comes back grey, identical to the regular file's decoding


def test_weights_with_an_unknown_hyper_layout_are_refused():
    with pytest.raises(InputError, match="unknown hyper-transform layout 'bogus'"):
        HyperpriorConfig.from_dict({**HyperpriorConfig().to_dict(), "hyper_layout": "bogus"})


def test_the_tiled_hyper_synthesis_equals_the_whole_one(tiny_weights: Path):
    """Tiles with HYPER_HALO rows and columns of context give the whole transform's values (up to float64
    summation order); one row of context is too little, which shows the check can fail."""
    from neuralcodec.codecs.common.tiling import tiled
    from neuralcodec.codecs.image.codec import HYPER_HALO

    codec = load_codec(str(tiny_weights))
    synthesis = codec._hyper_synthesis
    z = torch.randn(1, codec.image.config.n, 13, 21, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    whole = synthesis(z)
    assert (tiled(synthesis, z, 5, HYPER_HALO) - whole).abs().max() < 1e-10
    assert (tiled(synthesis, z, 5, 1) - whole).abs().max() > 1e-3


def test_an_image_taller_than_a_hyper_tile_round_trips_bit_exactly(tiny_weights: Path):
    from neuralcodec.codecs.image.codec import HYPER_TILE

    codec = load_codec(str(tiny_weights))
    rows = (HYPER_TILE + 2) * 64
    image = torch.rand(1, 3, rows, 64, generator=torch.Generator().manual_seed(1))
    payload, x_hat, _ = codec.compress(image, 1.0)
    assert torch.equal(codec.decompress(container.read(container.write(payload))), x_hat)


def test_compact_layout_keeps_the_cropped_latent_flag_and_refuses_unknown_flags(photo: np.ndarray):
    import neuralcodec

    data = neuralcodec.compress(photo[:40, :72], quality=2)  # the default model: compact layout
    assert data[:2] == container.COMPACT_MAGIC
    payload = image_compact.unpack(container.read(data, compact_models=compact_models()))
    assert payload.metadata["cropped_latent"] is True
    assert neuralcodec.decompress(data).size == (72, 40)
    stream = payload.sections["bits"]
    packed = image_compact.pack(payload)
    head = packed.sections[container.COMPACT_STREAM][:-len(stream)]
    flags_at = len(head) - 3  # flags, then the 2-byte check
    assert head[flags_at] == 2
    crafted = head[:flags_at] + bytes([head[flags_at] | 4]) + head[flags_at + 1:] + stream
    with pytest.raises(CorruptFileError, match="unknown flags"):
        image_compact.unpack(dataclasses.replace(packed, sections={container.COMPACT_STREAM: crafted}))
