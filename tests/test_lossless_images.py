"""The lossless image codec (`--lossless`): causal contexts, chain circuits, exact round trips of any 8-bit image."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec import container
from neuralcodec.api import decode_path, encode_path
from neuralcodec.cli import main
from neuralcodec.codecs.lossless.image_codec import LosslessImageCodec, tile_groups
from neuralcodec.codecs.lossless.image_coding import ChunkDecoder, ChunkEncoder, code_planes, tile_steps
from neuralcodec.codecs.lossless.image_header import check_header
from neuralcodec.codecs.lossless.image_model import bits_per_subpixel, image_variables
from neuralcodec.codecs.lossless.image_training import ImageCircuits, export_lossless_image, train_lossless_image
from neuralcodec.codecs.lossless.planes import SCHEMES, canvas, coding_canvas, decorrelated, predict, scan, store
from neuralcodec.codecs.registry import lossless_family_for_input
from neuralcodec.container import Payload
from neuralcodec.errors import CorruptFileError, InputError, LimitExceededError
from neuralcodec.limits import Limits
from neuralcodec.media.idx import write_idx
from neuralcodec.pretrained import load_named_weights
from neuralcodec.train.loop import TrainConfig


SCHEME = SCHEMES["errors"]
"""The context scheme of the small test circuits (the shipped default's)."""


def small_circuits(photo: np.ndarray, path: Path, contexts: str) -> Path:
    """Small circuits (H=4) with context scheme ``contexts``, started from the photo's statistics, exported
    like shipped weights to ``path``."""
    torch.manual_seed(0)
    model = ImageCircuits(hidden=4, contexts=contexts)
    generator = torch.Generator().manual_seed(0)
    for name, pixels in (("colour", photo), ("grey", photo[:, :, 1:2])):
        variables = image_variables(pixels, SCHEMES[contexts])
        model.circuits[name].initialize(torch.from_numpy(variables.astype(np.int64)), generator)
    export_lossless_image(model, path, "tiny-circuits")
    return path


@pytest.fixture(scope="module")
def circuit_weights(tmp_path_factory: pytest.TempPathFactory, photo: np.ndarray) -> Path:
    return small_circuits(photo, tmp_path_factory.mktemp("circuits") / "circuits.safetensors", SCHEME.name)


@pytest.fixture(scope="module")
def codec(circuit_weights: Path) -> LosslessImageCodec:
    return LosslessImageCodec.from_weights(load_named_weights(str(circuit_weights), "lossless-image"))


@pytest.mark.parametrize("contexts", sorted(SCHEMES))
def test_decoder_sees_the_contexts_the_encoder_sees(photo: np.ndarray, contexts: str) -> None:
    scheme = SCHEMES[contexts]
    planes = decorrelated(photo[:20, :30])
    full, board = coding_canvas(planes, scheme)[None], canvas(1, scheme.channels(3), 20, 30)
    for at in tile_steps(np.array([[20, 30]])):
        for got, want in zip(predict(board, at, scheme), predict(full, at, scheme)):
            np.testing.assert_array_equal(got, want)
        store(board, at, full[0, :, at[1] + 2, at[2] + 2].T, np.array([30]))
    np.testing.assert_array_equal(board, full)


@pytest.mark.parametrize("contexts", sorted(SCHEMES))
def test_every_context_scheme_round_trips(tmp_path: Path, photo: np.ndarray, contexts: str) -> None:
    weights = load_named_weights(str(small_circuits(photo, tmp_path / "w.safetensors", contexts)), "lossless-image")
    codec = LosslessImageCodec.from_weights(weights)
    assert codec.scheme is SCHEMES[contexts] and weights.config["contexts"] == contexts
    image = photo[:37, :41]
    chunks, _ = codec.compress(image, tile=16, chunk_symbols=500)
    np.testing.assert_array_equal(codec.decompress(chunks, *image.shape, tile=16, chunk_symbols=500), image)


def test_error_contexts_are_the_neighbours_errors(photo: np.ndarray) -> None:
    """The errors scheme's canvas carries |x - MED| of every pixel, and its activity adds the six causal
    neighbours' errors to the gradients'."""
    planes = decorrelated(photo[:12, :9])
    board = coding_canvas(planes, SCHEMES["errors"])
    at = (np.zeros(1, dtype=int), np.array([5]), np.array([4]))
    plain, gradients, _ = predict(board[None, :3], at, SCHEMES["gradients"])
    np.testing.assert_array_equal(board[3:, 7, 6], np.abs(planes[:, 5, 4] - plain[:, 0]))
    _, errors, texture = predict(board[None], at, SCHEMES["errors"])
    near = board[3:, [7, 6, 6, 6, 7, 5], [5, 6, 5, 7, 4, 6]].sum(1)  # W, N, NW, NE, WW, NN
    np.testing.assert_array_equal(errors[:, 0], gradients[:, 0] + near)
    variables = image_variables(photo[:12, :9], SCHEMES["errors"])[5 * 9 + 4]
    np.testing.assert_array_equal(variables[0::2], SCHEMES["errors"].classes(errors[:, 0], texture[:, 0]))


def test_tiles_are_coded_independently(codec: LosslessImageCodec, photo: np.ndarray) -> None:
    """Two tiles side by side cost what each costs alone (the tiling is what the file declares)."""
    _, both = codec.compress(photo[:16, :32], tile=16)
    _, left = codec.compress(photo[:16, :16], tile=16)
    _, right = codec.compress(photo[:16, 16:32], tile=16)
    assert both == pytest.approx(left + right, rel=1e-9)
    assert [len(g) for g in tile_groups(1000, 700, 256)] == [12]
    assert [len(g) for g in tile_groups(3000, 2000, 1024)] == [1] * 6  # at most a megapixel per group
    assert [g.tolist() for g in tile_groups(5, 3000, 1024)] == [[[0, 0, 5, 1024], [0, 1024, 5, 1024],
                                                                 [0, 2048, 5, 952]]]


def test_scan_visits_every_pixel_once_after_its_neighbours() -> None:
    step_of = np.full((7, 5), -1)
    for t, (rows, cols) in enumerate(scan(7, 5)):
        step_of[rows, cols] = t
    assert (step_of >= 0).all() and len(np.unique(step_of)) == len(scan(7, 5))
    i, j = 3, 2
    assert max(step_of[i, j - 1], step_of[i - 1, j + 1], step_of[i - 2, j], step_of[i, j - 2]) < step_of[i, j]


def test_coded_bits_match_the_circuit_likelihood(codec: LosslessImageCodec, circuit_weights: Path,
                                                 photo: np.ndarray) -> None:
    chunks, ideal_bits = codec.compress(photo)
    model = ImageCircuits(hidden=4, contexts=SCHEME.name)
    weights = load_named_weights(str(circuit_weights), "lossless-image")
    with torch.no_grad():
        for name, circuit in model.circuits.items():
            for part in ("root", "transition", "emission"):
                getattr(circuit, f"{part}_logits").copy_(weights.tensors[f"{name}.{part}"].float().log())
        variables = image_variables(photo, SCHEME)
        expected = float(bits_per_subpixel(model.circuits["colour"], torch.from_numpy(variables.astype(np.int64))).sum()) * 3
    assert abs(ideal_bits / expected - 1) < 0.01
    assert abs(8 * sum(map(len, chunks)) / ideal_bits - 1) < 0.01


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 5000, 3), (4097, 3, 1), (9, 14, 2), (12, 7, 4), (40, 37, 3)])
def test_odd_sizes_round_trip(codec: LosslessImageCodec, shape: tuple[int, int, int]) -> None:
    image = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    chunks, _ = codec.compress(image, chunk_symbols=4096)
    np.testing.assert_array_equal(codec.decompress(chunks, *shape, chunk_symbols=4096), image)
    chunks, _ = codec.compress(image, tile=5)  # tiles smaller than the image, cut on both sides
    np.testing.assert_array_equal(codec.decompress(chunks, *shape, tile=5), image)


def test_stream_chunks_are_checked(codec: LosslessImageCodec, photo: np.ndarray) -> None:
    image = photo[:16, :16]
    chunks, _ = codec.compress(image, chunk_symbols=100)
    assert len(chunks) > 1
    with pytest.raises(CorruptFileError, match="more than"):
        codec.decompress(chunks + chunks[-1:], 16, 16, 3, chunk_symbols=100)
    with pytest.raises(CorruptFileError, match="ends before"):
        codec.decompress(chunks[:-1], 16, 16, 3, chunk_symbols=100)
    size = np.array([[16, 16]])
    decoder = ChunkDecoder(chunks, 100)
    code_planes(codec.tables["colour"], SCHEME, canvas(1, SCHEME.channels(3), 16, 16), size, decoder)
    decoder.finish()
    encoder = ChunkEncoder(100)
    code_planes(codec.tables["colour"], SCHEME, coding_canvas(decorrelated(image), SCHEME)[None], size, encoder)
    assert encoder.finish() == chunks


def _save(path: Path, pixels: np.ndarray, mode: str, **options: object) -> Path:
    Image.fromarray(pixels, mode=mode).save(path, **options)
    return path


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1"])
def test_files_round_trip_exactly(tmp_path: Path, circuit_weights: Path, photo: np.ndarray, mode: str) -> None:
    source = tmp_path / "in.png"
    image = Image.fromarray(photo[:24, :40])
    if mode == "RGBA":
        image = image.convert("RGBA")
        image.putalpha(Image.fromarray(photo[:24, :40, 0]))
    elif mode == "P":
        image = image.quantize(colors=40)
    else:
        image = image.convert(mode)
    image.save(source)
    encode_path(source, tmp_path / "x.ncd", model=str(circuit_weights), lossless=True, verify=True)
    decode_path(tmp_path / "x.ncd", tmp_path / "out.png", model=str(circuit_weights))
    with Image.open(source) as original, Image.open(tmp_path / "out.png") as decoded:
        want = original.convert("RGB" if mode == "P" else ("L" if mode == "1" else mode))
        assert decoded.mode == want.mode and decoded.size == want.size
        np.testing.assert_array_equal(np.asarray(decoded), np.asarray(want))


def test_unknown_context_schemes_and_bad_emissions_are_refused(tmp_path: Path, circuit_weights: Path) -> None:
    weights = load_named_weights(str(circuit_weights), "lossless-image")
    with pytest.raises(InputError, match="context scheme"):
        LosslessImageCodec.from_weights(replace(weights, config={**weights.config, "contexts": "bogus"}))
    with pytest.raises(InputError, match="context scheme"):
        train_lossless_image(tmp_path, TrainConfig(out_dir=tmp_path), hidden=4, per_image=10, contexts="bogus")
    heavy = {**weights.tensors, "grey.emission": torch.ones_like(weights.tensors["grey.emission"]) * 0.01}
    with pytest.raises(InputError, match="sum to at most 2"):  # rows summing to 2.56: cdf products not exact
        LosslessImageCodec.from_weights(replace(weights, tensors=heavy))


def test_sixteen_bit_images_are_refused(tmp_path: Path, circuit_weights: Path) -> None:
    source = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16)).save(source)
    with pytest.raises(InputError, match="16-bit"):
        encode_path(source, tmp_path / "x.ncd", model=str(circuit_weights), lossless=True)


def _payload(**metadata: object) -> Payload:
    meta = {"width": 4, "height": 4, "mode": "RGB", "tile": 256, "chunk": 1024, "chunks": [3], **metadata}
    return Payload("lossless-image", "m", b"", meta, {"stream": b"abc"})


@pytest.mark.parametrize("metadata, error", [
    ({"width": 200_000, "height": 200_000}, LimitExceededError),
    ({"width": 0}, LimitExceededError),
    ({"mode": "CMYK"}, CorruptFileError),
    ({"chunk": 0}, CorruptFileError),
    ({"tile": 1 << 20}, CorruptFileError),
    ({"tile": None}, CorruptFileError),
    ({"chunks": [1, 2]}, CorruptFileError),
    ({"chunks": [5]}, CorruptFileError),
])
def test_hostile_headers_are_refused_before_allocation(metadata: dict, error: type) -> None:
    with pytest.raises(error):
        check_header(_payload(**metadata), Limits())


def test_cli_lossless_round_trip(tmp_path: Path, circuit_weights: Path, photo: np.ndarray) -> None:
    source = _save(tmp_path / "photo.png", photo[:30, :45], "RGB")
    ncd, out = tmp_path / "photo.ncd", tmp_path / "back.png"
    assert main(["encode", str(source), str(ncd), "--lossless", "--model", str(circuit_weights)]) == 0
    assert container.read_file(ncd).codec == "lossless-image"
    assert main(["decode", str(ncd), str(out), "--model", str(circuit_weights)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out)), photo[:30, :45])
    assert main(["encode", str(source), str(ncd), "--lossless", "--codec", "image-hyperprior"]) == 2


def test_lossless_routing(tmp_path: Path, photo: np.ndarray) -> None:
    idx = tmp_path / "digits-idx3-ubyte"
    write_idx(idx, np.zeros((2, 28, 28), dtype=np.uint8))
    assert lossless_family_for_input(idx).name == "lossless-pc"
    assert lossless_family_for_input(_save(tmp_path / "digit.png", photo[:28, :28, 0], "L")).name == "lossless-pc"
    assert lossless_family_for_input(_save(tmp_path / "photo.png", photo, "RGB")).name == "lossless-image"
    with pytest.raises(InputError, match="lossy"):
        lossless_family_for_input(idx, "image-hyperprior")


def test_cli_refuses_a_hostile_file_before_loading_a_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ncd = tmp_path / "huge.ncd"
    payload = _payload(width=200_000, height=200_000)
    ncd.write_bytes(container.serialize(Payload(payload.codec, "no-such-model", b"", payload.metadata,
                                                payload.sections)))
    assert main(["decode", str(ncd), str(tmp_path / "out.png")]) == 2
    error = capsys.readouterr().err
    assert "200000" in error and "no-such-model" not in error  # the size fails before the model is looked up
    assert not (tmp_path / "out.png").exists()


def test_train_command_exports_the_context_scheme_it_trained_with(tmp_path: Path, photo: np.ndarray) -> None:
    """`codec train lossless-image --contexts errors`: validation bits fall, the weights name their scheme,
    and the codec built from them codes with it."""
    data = tmp_path / "photos"
    data.mkdir()
    for k in range(16):  # every 15th file (the 8th) is held out for validation
        Image.fromarray(np.ascontiguousarray(np.rot90(photo, k % 4)[k:, k:])).save(data / f"{k:02d}.png")
    out = tmp_path / "run"
    args = ["train", "lossless-image", "--data", str(data), "--out", str(out), "--hidden", "4", "--per-image", "500",
            "--contexts", "errors", "--steps", "30", "--batch-size", "256", "--validate-every", "15",
            "--checkpoint-every", "15"]
    assert main(args) == 0
    log = [line for line in (out / "log.jsonl").read_text().splitlines() if "val_bpsp_colour" in line]
    first, last = (float(line.split('"val_bpsp_colour": ')[1].split(",")[0]) for line in (log[0], log[-1]))
    assert last < first
    weights = load_named_weights(str(out / "model.safetensors"), "lossless-image")
    assert weights.config == {"hidden": 4, "contexts": "errors"}
    codec = LosslessImageCodec.from_weights(weights)
    assert codec.scheme is SCHEMES["errors"]
    chunks, _ = codec.compress(photo[:20, :30])
    np.testing.assert_array_equal(codec.decompress(chunks, 20, 30, 3), photo[:20, :30])
