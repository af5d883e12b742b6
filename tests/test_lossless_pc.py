"""The lossless circuit codec: Chow-Liu structure, exact HCLT likelihoods, exact deterministic coding, files."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec import container
from neuralcodec.api import decode_path, encode_path
from neuralcodec.codecs.lossless.chow_liu import RootedTree, chow_liu_tree, mutual_information, root_at_center
from neuralcodec.codecs.lossless.hclt import HCLTConfig, HiddenChowLiuTree
from neuralcodec.codecs.lossless.coding import CodingTables, code_pixels, naive_conditionals
from neuralcodec.media.idx import parse_idx, read_idx, write_idx

from neuralcodec.codecs.registry import load_codec
from neuralcodec.container import CompactModel, Payload
from neuralcodec.limits import Limits
from neuralcodec.eval.classical_lossless import LOSSLESS_CODECS
from neuralcodec.errors import CorruptFileError, InputError, LimitExceededError, NeuralCodecError, NotNcdFileError
from neuralcodec.codecs.lossless.training import build_model, export_lossless_pc

from conftest import require_shared


def digits(count: int, size: int = 8, seed: int = 0) -> np.ndarray:
    """Structured 8-bit images: random bright strokes on a dark background, with noise."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, size, size), dtype=np.float64)
    for image in images:
        row, col = rng.integers(1, size - 1, 2)
        image[row, :] = 220
        image[:, col] = 180
    images += rng.normal(0, 12, images.shape)
    return np.clip(images, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def small_model() -> HiddenChowLiuTree:
    torch.manual_seed(0)
    model = build_model(digits(400), hidden=6, seed=0)
    with torch.no_grad():  # a few Adam steps so that the latents mean something
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        pixels = torch.from_numpy(digits(400).reshape(400, -1).astype(np.int64))
    for _ in range(15):
        loss = model.bits_per_dim(pixels).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


@pytest.fixture(scope="module")
def small_weights(small_model: HiddenChowLiuTree, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pc") / "pc.safetensors"
    export_lossless_pc(small_model, path, model_id="pc-test")
    return path


def tables_of(model: HiddenChowLiuTree) -> CodingTables:
    root, transition, emission = (p.detach().half() for p in model.probabilities())
    return CodingTables.from_probabilities(root, transition, emission, model.tree)


# ---------------------------------------------------------------------- structure


def test_mutual_information_of_copies_and_independent_pixels():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, 4000)
    pixels = torch.from_numpy(np.stack([a, a, rng.integers(0, 256, 4000)], 1))
    info = mutual_information(pixels, bins=4).numpy()
    assert info[0, 1] == pytest.approx(np.log(4), rel=0.02)  # a copy shares all log(4) nats of 4 bins
    assert info[0, 2] < 0.01


def test_chow_liu_links_dependent_pixels_and_roots_at_the_center():
    rng = np.random.default_rng(2)
    base = rng.integers(0, 256, (3000, 1))
    # pixel k copies pixel k-1 with a little noise: the tree must be the chain 0-1-2-3-4-5
    chain = [base]
    for _ in range(5):
        chain.append(np.clip(chain[-1] + rng.integers(-8, 9, (3000, 1)), 0, 255))
    order = [3, 0, 5, 1, 4, 2]  # scatter the chain over the pixel grid
    pixels = np.empty((3000, 6), dtype=np.int64)
    for k, pixel in enumerate(order):
        pixels[:, pixel] = chain[k][:, 0]
    tree = chow_liu_tree(torch.from_numpy(pixels), width=3)
    edges = {frozenset((int(tree.order[k]), int(tree.order[tree.parent[k]]))) for k in range(1, 6)}
    assert edges == {frozenset((order[k], order[k + 1])) for k in range(5)}
    assert tree.depth.max() == 3  # a 6-node chain rooted in its middle


def test_rooted_tree_rejects_inconsistent_arrays():
    with pytest.raises(InputError):
        RootedTree(order=np.array([0, 1, 1]), parent=np.array([-1, 0, 0]))
    with pytest.raises(InputError):
        RootedTree(order=np.array([0, 1, 2]), parent=np.array([-1, 2, 0]))
    with pytest.raises(InputError):
        root_at_center([[1], [0], []])  # not connected


# ---------------------------------------------------------------------- likelihood


def test_likelihood_is_a_normalized_distribution():
    """Sum of p(x) over every image of a 2x2 model with 3 values is exactly 1."""
    torch.manual_seed(3)
    tree = root_at_center([[1, 2], [0, 3], [0], [1]])
    model = HiddenChowLiuTree(HCLTConfig(height=2, width=2, hidden=3, categories=3), tree)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    every = torch.tensor(list(itertools.product(range(3), repeat=4)))
    total = model.log_likelihood(every).detach().double().exp().sum()
    assert float(total) == pytest.approx(1.0, abs=1e-5)


def test_likelihood_matches_brute_force_over_latents():
    torch.manual_seed(4)
    tree = root_at_center([[1], [0, 2], [1]])
    model = HiddenChowLiuTree(HCLTConfig(height=1, width=3, hidden=2, categories=4), tree)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    root, transition, emission = (p.detach().double() for p in model.probabilities())
    x = torch.tensor([[3, 0, 2]])
    nodes = x[0, model.order]
    brute = 0.0
    for z in itertools.product(range(2), repeat=3):
        prob = root[z[0]]
        for k in range(1, 3):
            prob = prob * transition[k - 1, z[int(model.parent[k])], z[k]]
        for k in range(3):
            prob = prob * emission[k, z[k], nodes[k]]
        brute += float(prob)
    assert float(model.log_likelihood(x).detach()) == pytest.approx(np.log(brute), abs=1e-5)


def test_bad_pixels_are_rejected(small_model: HiddenChowLiuTree):
    with pytest.raises(InputError):
        small_model.log_likelihood(torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(InputError):
        small_model.log_likelihood(torch.full((2, 64), 256))
    with pytest.raises(InputError):
        small_model.log_likelihood(torch.zeros(2, 64))


# ---------------------------------------------------------------------- coding


def test_incremental_conditionals_equal_the_naive_recomputation(small_model: HiddenChowLiuTree):
    """Per image, whether it shares its pmfs with identical images (rows 0 and 5-11) or images that agree on
    a prefix (12, 13: blank, then one differs at its last pixel) or stands alone."""
    tables = tables_of(small_model)
    distinct = digits(5, seed=9).reshape(5, -1)
    blank, late = np.zeros((1, 64), dtype=distinct.dtype), np.zeros((1, 64), dtype=distinct.dtype)
    late[0, tables.tree.order[-1]] = 200
    images = np.concatenate([distinct, np.repeat(distinct[:1], 7, axis=0), blank, late])
    seen, groups = {}, {}

    def record(pixel: int, pmf: np.ndarray, rows: np.ndarray) -> np.ndarray:
        seen[pixel] = (pmf / pmf.sum(1, keepdims=True))[rows]
        groups[pixel] = len(pmf)
        return images[:, pixel]

    code_pixels(tables, len(images), record)
    naive = naive_conditionals(tables, images)
    assert sorted(seen) == list(range(64))
    assert max(np.abs(seen[p] - naive[:, p]).max() for p in seen) < 1e-4
    assert groups[tables.tree.order[0]] == 1 and groups[tables.tree.order[-1]] == 6  # 5 digits, blank/late
    # the chain rule: the product of the conditionals is the model's likelihood
    rows = np.arange(len(images))
    log_chain = sum(np.log(seen[p][rows, images[:, p]]) for p in seen)
    exact = small_model.log_likelihood(torch.from_numpy(images.astype(np.int64))).detach().numpy()
    np.testing.assert_allclose(log_chain, exact, rtol=2e-3)


def test_given_pixels_and_cumulative_pmfs(small_model: HiddenChowLiuTree):
    """Pixels in ``given`` get no pmf but still condition the rest; ``cumulative`` pmfs are the plain ones'
    exact running sums."""
    tables = tables_of(small_model)
    images = digits(6, seed=4).reshape(6, -1)
    plain, cumulative = {}, {}

    def recorder(into: dict) -> Callable[[int, np.ndarray | None, np.ndarray], np.ndarray]:
        def record(pixel: int, pmf: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
            into[pixel] = None if pmf is None else pmf[rows]
            return images[:, pixel]
        return record

    given = set(tables.tree.order[::3].tolist())
    code_pixels(tables, len(images), recorder(plain))
    code_pixels(tables, len(images), recorder(cumulative), given=given, cumulative=True)
    assert {p for p, pmf in cumulative.items() if pmf is None} == given
    for pixel in set(plain) - given:
        np.testing.assert_array_equal(cumulative[pixel], np.cumsum(plain[pixel], axis=1))


def test_round_trip_is_exact_and_rate_matches_the_model(small_weights: Path, small_model: HiddenChowLiuTree):
    codec = load_codec(str(small_weights))
    images = digits(300, seed=11)
    stream, ideal_bits = codec.compress(images)
    assert np.array_equal(codec.decompress(stream, len(images)), images)
    nll_bits = float(small_model.bits_per_dim(torch.from_numpy(images.reshape(300, -1).astype(np.int64))).sum()) * 64
    assert ideal_bits == pytest.approx(nll_bits, rel=0.01)  # fp16 parameters + integer messages cost < 1%
    assert 8 * len(stream) <= ideal_bits * 1.005 + 64


def test_round_trip_random_images(small_weights: Path):
    codec = load_codec(str(small_weights))
    images = np.random.default_rng(5).integers(0, 256, (40, 8, 8), dtype=np.uint8)
    stream, _ = codec.compress(images)
    assert np.array_equal(codec.decompress(stream, 40), images)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_bar_counts_images_on_a_terminal_only(small_weights: Path, terminal: bool,
                                                       monkeypatch: pytest.MonkeyPatch):
    codec = load_codec(str(small_weights))
    images = digits(300, seed=3)
    stderr = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    stream, _ = codec.compress(images, progress=True)
    assert np.array_equal(codec.decompress(stream, len(images), progress=True), images)
    shown = stderr.getvalue()
    if terminal:
        assert "encoding:" in shown and "decoding:" in shown and "/300 [" in shown and "image/s" in shown
    else:
        assert shown == ""


def test_decoding_does_not_depend_on_threads(small_weights: Path):
    codec = load_codec(str(small_weights))
    images = digits(50, seed=12)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        stream, _ = codec.compress(images)
        torch.set_num_threads(2)
        assert np.array_equal(codec.decompress(stream, 50), images)
        assert codec.compress(images)[0] == stream
    finally:
        torch.set_num_threads(previous)


def test_wrong_stream_fails_cleanly(small_weights: Path):
    codec = load_codec(str(small_weights))
    stream, _ = codec.compress(digits(3, seed=13))
    damaged = bytearray(stream)
    damaged[len(damaged) // 2] ^= 0x10
    try:
        decoded = codec.decompress(bytes(damaged), 3)
    except NeuralCodecError:
        return  # detected: the stream did not end where it should
    assert not np.array_equal(decoded, digits(3, seed=13))


def test_codec_rejects_wrong_images(small_weights: Path):
    codec = load_codec(str(small_weights))
    with pytest.raises(InputError, match="8x8"):
        codec.compress(np.zeros((2, 9, 9), dtype=np.uint8))
    with pytest.raises(InputError, match="8-bit"):
        codec.compress(np.zeros((2, 8, 8), dtype=np.uint16))


# ---------------------------------------------------------------------- compact container


def test_compact_file_round_trip_and_checks():
    model = CompactModel("lossless-pc", "m", b"\x01" * 8)
    payload = Payload("lossless-pc", "m", model.weights_hash, {}, {"stream": b"\x10\x20\x30\x40"})
    data = container.write_compact(payload, 3)
    assert len(data) == 2 + 1 + 2 + 4
    back = container.read(data, compact_models={3: model})
    assert back.sections == payload.sections and back.model_id == "m"
    with pytest.raises(NotNcdFileError, match="code 3"):
        container.read(data, compact_models={})
    other = CompactModel("lossless-pc", "m", b"\x02" * 8)
    with pytest.raises(CorruptFileError, match="other weights"):
        container.read(data, compact_models={3: other})
    for i in range(len(data)):
        if i < 2:
            continue
        damaged = bytearray(data)
        damaged[i] ^= 0x04
        with pytest.raises((CorruptFileError, NotNcdFileError)):
            container.read(bytes(damaged), compact_models={3: model})
    with pytest.raises(InputError):
        container.write_compact(Payload("x", "m", b"", {"count": 2}, {"stream": b""}), 1)


# ---------------------------------------------------------------------- files


def test_idx_round_trip_and_errors(tmp_path: Path):
    images = digits(7)
    write_idx(tmp_path / "a-ubyte.gz", images)
    assert np.array_equal(read_idx(tmp_path / "a-ubyte.gz"), images)
    raw = (tmp_path / "a-ubyte.gz").read_bytes()
    with pytest.raises(InputError):
        parse_idx(raw[:-5])
    with pytest.raises(InputError, match="type"):
        parse_idx(b"\0\0\x0d\x01\0\0\0\x01" + b"\0" * 4)
    with pytest.raises(InputError, match="declares"):
        parse_idx(b"\0\0\x08\x02\0\0\0\x09\0\0\0\x09" + b"\0" * 10)
    with pytest.raises(InputError, match="limit"):
        parse_idx(b"\0\0\x08\x01\xff\xff\xff\xff", max_values=1000)
    with pytest.raises(InputError, match="expands"):
        parse_idx(gzip.compress(b"\0\0\x08\x01\0\x10\0\0" + bytes(1 << 20)), max_values=1000)


def test_files_idx_folder_and_single_image(tmp_path: Path, small_weights: Path):
    model = str(small_weights)
    images = digits(12, seed=21)
    write_idx(tmp_path / "in-ubyte", images)
    stats = encode_path(tmp_path / "in-ubyte", tmp_path / "all.ncd", model=model, verify=True)
    assert stats["images"] == 12 and stats["verified"] == "exact"
    decode_path(tmp_path / "all.ncd", tmp_path / "out-ubyte.gz", model=model)
    assert np.array_equal(read_idx(tmp_path / "out-ubyte.gz"), images)

    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, image in enumerate(images[:4]):
        Image.fromarray(image).save(folder / f"digit-{i}.png")
    encode_path(folder, tmp_path / "folder.ncd", model=model)
    decode_path(tmp_path / "folder.ncd", tmp_path / "restored", model=model)
    for i in range(4):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "restored" / f"digit-{i}.png")), images[i])
    with pytest.raises(InputError, match="exists"):
        decode_path(tmp_path / "folder.ncd", tmp_path / "restored", model=model)
    with pytest.raises(InputError, match="4 images"):
        decode_path(tmp_path / "folder.ncd", tmp_path / "one.png", model=model)

    encode_path(folder / "digit-2.png", tmp_path / "one.ncd", model=model)
    decode_path(tmp_path / "one.ncd", tmp_path / "one.png", model=model)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "one.png")), images[2])


@pytest.mark.parametrize("mode,match", [("RGB", "RGB"), ("I;16", "16-bit")])
def test_colour_and_16_bit_images_are_refused(tmp_path: Path, small_weights: Path, mode: str, match: str):
    image = Image.new(mode, (8, 8))
    image.save(tmp_path / "x.png")
    with pytest.raises(InputError, match=match):
        encode_path(tmp_path / "x.png", tmp_path / "x.ncd", model=str(small_weights), codec="lossless-pc")
    assert not (tmp_path / "x.ncd").exists()


def test_wrong_size_and_corrupt_inputs(tmp_path: Path, small_weights: Path):
    Image.new("L", (9, 8)).save(tmp_path / "big.png")
    with pytest.raises(InputError, match="8x8"):
        encode_path(tmp_path / "big.png", tmp_path / "o.ncd", model=str(small_weights))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnonsense")
    with pytest.raises(InputError):
        encode_path(tmp_path / "bad.png", tmp_path / "o.ncd", model=str(small_weights))
    (tmp_path / "empty-ubyte").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        encode_path(tmp_path / "empty-ubyte", tmp_path / "o.ncd", model=str(small_weights))
    assert not (tmp_path / "o.ncd").exists()


# ---------------------------------------------------------------------- shipped model


def test_shipped_mnist_model_codes_a_digit_compactly(tmp_path: Path):
    from neuralcodec.pretrained import list_models

    if not any(m.model_id == "hclt-mnist" for m in list_models()):
        pytest.skip("hclt-mnist is not installed")
    image = np.zeros((28, 28), dtype=np.uint8)
    image[6:22, 12:16] = 255  # a "1"
    Image.fromarray(image).save(tmp_path / "one.png")
    stats = encode_path(tmp_path / "one.png", tmp_path / "one.ncd")  # picks the lossless codec by itself
    assert stats["codec"] == "lossless-pc"
    data = (tmp_path / "one.ncd").read_bytes()
    assert data[:2] == container.COMPACT_MAGIC and len(data) - stats["stream_bytes"] == 5
    decode_path(tmp_path / "one.ncd", tmp_path / "back.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "back.png")), image)


def test_shipped_mnist_model_on_real_digits():
    path = require_shared("mnist", "t10k-images-idx3-ubyte.gz")
    codec = load_codec(codec="lossless-pc")
    images = read_idx(path)[:200]
    stream, _ = codec.compress(images)
    assert np.array_equal(codec.decompress(stream, 200), images)
    assert 8 * len(stream) / images.size < 1.6  # PNG needs ~2.8 bpd on MNIST


def test_train_command_learns_and_exports_weights_the_codec_uses(tmp_path: Path):
    from neuralcodec.cli import main

    write_idx(tmp_path / "train-ubyte.gz", digits(300, size=6, seed=30))
    out = tmp_path / "run"
    args = ["train", "lossless-pc", "--data", str(tmp_path / "train-ubyte.gz"), "--out", str(out), "--hidden", "4",
            "--steps", "40", "--batch-size", "32", "--checkpoint-every", "20", "--validate-every", "20"]
    assert main(args) == 0
    log = [line for line in (out / "log.jsonl").read_text().splitlines() if "val_bpd" in line]
    first, last = (float(line.split('"val_bpd": ')[1].rstrip("}")) for line in (log[0], log[-1]))
    assert last < first
    images = digits(5, size=6, seed=31)
    write_idx(tmp_path / "test-ubyte", images)
    assert main(["encode", str(tmp_path / "test-ubyte"), str(tmp_path / "t.ncd"), "--model",
                 str(out / "model.safetensors")]) == 0
    assert main(["decode", str(tmp_path / "t.ncd"), str(tmp_path / "back-ubyte"), "--model",
                 str(out / "model.safetensors")]) == 0
    assert np.array_equal(read_idx(tmp_path / "back-ubyte"), images)
    assert main(args[:-4] + ["--steps", "60", "--checkpoint-every", "20", "--validate-every", "20"]) == 0  # resumes
    steps = [int(line.split('"step": ')[1].split(",")[0].rstrip("}")) for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps[-1] == 60 and steps.count(10) == 1  # continued from step 40, did not start over


@pytest.mark.parametrize("metadata,error", [({"count": 0, "chunk": 4096}, CorruptFileError),
                                            ({"count": "3", "chunk": 4096}, CorruptFileError),
                                            ({"count": 2, "chunk": 7}, CorruptFileError),
                                            ({"count": 10**9, "chunk": 4096}, LimitExceededError)])
def test_crafted_metadata_is_refused(tmp_path: Path, small_weights: Path, metadata: dict, error: type):
    codec = load_codec(str(small_weights))
    stream, _ = codec.compress(digits(2))
    payload = Payload(codec.name, codec.model_id, codec.weights_hash, metadata, {"stream": stream})
    with pytest.raises(error):
        codec.decode_file(payload, tmp_path / "out-ubyte", Limits())
    assert not (tmp_path / "out-ubyte").exists()


@pytest.mark.parametrize("name", sorted(LOSSLESS_CODECS))
def test_classical_lossless_baselines_round_trip(name: str):
    codec = LOSSLESS_CODECS[name]
    if not codec.available():
        pytest.skip(f"{name}: {codec.unavailable_reason()}")
    image = digits(1, size=28, seed=40)[0]
    size = codec.size_checked(image)
    assert 0 < size < image.size * 2
    with pytest.raises(InputError):
        codec.size_checked(np.zeros((4, 4, 3), dtype=np.uint8))


def test_truncated_compact_header_is_reported_as_truncated():
    from neuralcodec.errors import TruncatedFileError

    for data in (b"Nc", b"Nc\x01", b"Nc\x01\x00", b"Nc\x81"):
        with pytest.raises(TruncatedFileError):
            container.read(data, compact_models={1: CompactModel("lossless-pc", "m", b"")})


def test_info_describes_compact_files(tmp_path: Path, capsys):
    from neuralcodec.cli import main
    from neuralcodec.pretrained import list_models

    if not any(m.compact_code for m in list_models()):
        pytest.skip("no shipped model has a compact code")
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(tmp_path / "blank.png")
    assert main(["encode", str(tmp_path / "blank.png"), str(tmp_path / "blank.ncd")]) == 0
    capsys.readouterr()
    assert main(["info", str(tmp_path / "blank.ncd"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "compact" and summary["overhead_bytes"] == 5
    assert summary["file_bytes"] == (tmp_path / "blank.ncd").stat().st_size
