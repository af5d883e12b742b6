"""The motion-compensated video codec: exact motion compensation, motion coding, bit-exact decoding,
files, training, bad input."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec.cli import main
from neuralcodec.codecs.image.refinement import lambda_at
from neuralcodec.codecs.video.mc_codec import MotionCompensatedVideoCodec
from neuralcodec.codecs.video.mc_export import export_mc_model
from neuralcodec.codecs.video.mc_model import MotionCompensatedConfig, MotionCompensatedVideoModel
from neuralcodec.codecs.video.motion import (
    BLOCK, MAX_VECTOR, decode_motion, encode_motion, estimate_motion, field_shape, predict,
)
from neuralcodec.codecs.video.hyper_latent_context import ZERO_SPIKE, TemporalHyperLatentTables, _mixed_row
from neuralcodec.codecs.video.prediction_filter import apply_filter, fit_filter
from neuralcodec.codecs.video.training import frozen_image_model
from neuralcodec import container
from neuralcodec.container import read_file
from neuralcodec.entropy import SymbolDecoder, SymbolEncoder
from neuralcodec.entropy.models import FactorizedPrior
from neuralcodec.errors import CorruptFileError, InputError
from neuralcodec.media.video import VideoInfo, open_video, open_video_writer
from neuralcodec.pretrained import load_weights_file
from tests.test_video_io import moving_frames


def _textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture (block matching needs structure, not a gradient)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8 + 2, width // 8 + 2, 3)).astype(np.uint8)
    return np.array(Image.fromarray(coarse).resize((width + 16, height + 16), Image.BICUBIC))[8:8 + height, 8:8 + width]


# ----------------------------------------------------------------------------- motion
def test_prediction_is_exact_integer_motion_compensation():
    reference = np.random.default_rng(1).integers(0, 256, (21, 35, 3)).astype(np.uint8)
    rows, columns = field_shape(21, 35)
    assert (rows, columns) == (-(-21 // BLOCK), -(-35 // BLOCK))
    zero = np.zeros((rows, columns, 2), np.int32)
    assert np.array_equal(predict(reference, zero), reference)
    # a whole-pixel vector reads the displaced pixel, replicating the reference's edges outside it
    shifted = predict(reference, zero + np.array([2, -4], np.int32))  # (+1, -2) pixels
    ys = np.clip(np.arange(21) + 1, 0, 20)[:, None]
    xs = np.clip(np.arange(35) - 2, 0, 34)[None, :]
    assert np.array_equal(shifted, reference[ys, xs])
    # half pixels: the rounded mean of the two (or four) neighbours, in integers
    half = predict(reference, zero + np.array([1, 1], np.int32)).astype(int)
    r = reference.astype(int)
    assert np.array_equal(half[3, 4], (r[3, 4] + r[3, 5] + r[4, 4] + r[4, 5] + 2) >> 2)
    across = predict(reference, zero + np.array([0, 1], np.int32)).astype(int)
    assert np.array_equal(across[5, 6], (2 * r[5, 6] + 2 * r[5, 7] + 2) >> 2)


def test_overlapped_prediction_mixes_neighbouring_vectors_with_integer_ramps():
    reference = np.random.default_rng(2).integers(0, 256, (40, 50, 3)).astype(np.uint8)
    field = np.zeros((*field_shape(40, 50), 2), np.int32) + np.array([3, -5], np.int32)
    # one vector everywhere: every pixel reads the same place through all its blocks, exactly as without overlap
    assert np.array_equal(predict(reference, field, overlapped=True), predict(reference, field))
    # a ramp 4x and two blocks side by side, the right one reading a pixel further: at the last column of
    # the left block the weights are 17/32 (own) and 15/32 (the right block's vector)
    ramp = np.broadcast_to((4 * np.arange(32, dtype=np.uint8))[None, :, None], (16, 32, 3)).copy()
    two = np.array([[[0, 0], [0, 2]]], np.int32)
    plain, overlapped = predict(ramp, two).astype(int), predict(ramp, two, overlapped=True).astype(int)
    assert plain[5, 15, 0] == 60 and overlapped[5, 15, 0] == round((17 * 60 + 15 * 64) / 32)
    assert overlapped[5, 16, 0] == round((17 * 68 + 15 * 64) / 32)  # first column of the right block
    assert np.array_equal(overlapped[:, :4], plain[:, :4])  # far from the boundary (and the field's edge)


def test_estimation_finds_a_global_shift():
    scene = _textured(96, 128)
    reference, current = scene[4:68, 8:104], scene[:64, 13:109]  # the content moved by (+4, -5) pixels
    motion = estimate_motion(reference, current)
    inner = motion[1:-1, 1:-1].reshape(-1, 2)
    assert (inner == np.array([-8, 10])).all(axis=1).mean() > 0.8
    prediction = predict(reference, motion)
    error = np.abs(prediction.astype(int) - current)[BLOCK:-BLOCK, BLOCK:-BLOCK]
    assert error.mean() < np.abs(reference.astype(int) - current)[BLOCK:-BLOCK, BLOCK:-BLOCK].mean() / 4


def test_estimation_with_the_previous_field_keeps_vectors_cheap_under_it():
    scene = _textured(96, 128)
    reference, current = scene[4:68, 8:104], scene[:64, 13:109]  # the content moved by (+4, -5) pixels
    shift = np.zeros((*field_shape(64, 96), 2), np.int32) + np.array([-8, 10], np.int32)
    for weight in (0.25, 4.0):
        chosen = estimate_motion(reference, current, weight, previous=shift)
        assert chosen.shape == shift.shape and (chosen == shift).all(axis=-1).mean() > 0.9
        with_previous, alone = SymbolEncoder(), SymbolEncoder()
        encode_motion(chosen, with_previous, shift)
        encode_motion(chosen, alone)
        assert with_previous.ideal_bits < 0.8 * alone.ideal_bits
    still = estimate_motion(reference, reference, 4.0, previous=np.zeros_like(shift))
    assert not still.any()


def test_motion_field_round_trip_and_hostile_vectors():
    rng = np.random.default_rng(2)
    field = rng.integers(-MAX_VECTOR, MAX_VECTOR + 1, (5, 7, 2)).astype(np.int32)
    field[2:4] = 0
    encoder = SymbolEncoder()
    encode_motion(field, encoder)
    assert np.array_equal(decode_motion(5, 7, SymbolDecoder(encoder.finish())), field)
    static = SymbolEncoder()
    encode_motion(np.zeros((30, 52, 2), np.int32), static)
    assert len(static.finish()) < 30  # a static 416x240 frame's field costs almost nothing
    bad = SymbolEncoder()
    encode_motion(np.full((2, 2, 2), MAX_VECTOR + 5, np.int32), bad)
    with pytest.raises(CorruptFileError, match="motion vector"):
        decode_motion(2, 2, SymbolDecoder(bad.finish()))


def test_motion_coded_with_the_previous_field_round_trips_and_costs_less_where_motion_persists():
    rng = np.random.default_rng(5)
    pan = np.zeros((15, 26, 2), np.int32) + np.array([3, -7], np.int32)
    pan[4:9, 5:12] = rng.integers(-20, 21, (5, 7, 2))  # players moving irregularly in the panning scene
    current = pan.copy()
    current[5:7, 6:9] += np.array([1, -1], np.int32)  # ... and as much in the next frame, a few a little more
    for previous in (pan, rng.integers(-MAX_VECTOR, MAX_VECTOR + 1, pan.shape).astype(np.int32)):
        encoder = SymbolEncoder()
        encode_motion(current, encoder, previous)
        assert np.array_equal(decode_motion(15, 26, SymbolDecoder(encoder.finish()), previous), current)
    with_previous, alone = SymbolEncoder(), SymbolEncoder()
    encode_motion(current, with_previous, pan)
    encode_motion(current, alone)
    assert with_previous.ideal_bits < 0.7 * alone.ideal_bits
    with pytest.raises(InputError, match="previous motion field"):
        encode_motion(current, SymbolEncoder(), pan[:, :-1])


# ----------------------------------------------------------------------------- hyper-latent context
def _prior(channels: int = 3) -> FactorizedPrior:
    torch.manual_seed(0)
    prior = FactorizedPrior(channels, init_scale=4.0)
    prior.build_tables()
    return prior


def test_mixed_tables_put_the_spike_on_the_previous_symbol_in_exact_integers():
    row = np.array([5, 1 << 23, (1 << 23) - 10, 5], np.int64)  # three symbols and the escape
    mixed = _mixed_row(row, 2, round(0.7 * (1 << 24)))
    assert mixed.sum() == 1 << 24 and mixed.min() >= 1
    assert mixed[2] >= round(0.7 * (1 << 24)) and (mixed[[0, 1, 3]] <= row[[0, 1, 3]]).all()
    tables = TemporalHyperLatentTables(_prior())
    own = tables.prior.tables
    assert len(tables.tables) == len(own) + int(own.lengths.sum())
    previous = np.zeros((1, 3, 1, 1), np.int64)
    spike = tables.indexes(previous)[0, :, 0, 0]
    zero = -own.offsets  # the median's entry in each channel's row
    assert (tables.tables.freqs[spike, zero] >= ZERO_SPIKE * (1 << 24)).all()


def test_hyper_latent_coded_with_the_previous_symbols_round_trips_and_costs_less_when_they_repeat():
    tables = TemporalHyperLatentTables(_prior())
    rng = np.random.default_rng(7)
    medians = tables.prior._medians_like(4)
    previous = rng.integers(-3, 4, (1, 3, 6, 5))
    previous[0, 0, 0, 0] = 500  # outside the table: that position codes with the channel's own row
    symbols = previous.copy()
    symbols[0, 1, 2, :3] += 1
    symbols[0, 2, 0, 0] = -700  # an escape
    z = torch.from_numpy(symbols).float() + medians
    bits = []
    for context in (previous, None):
        encoder = SymbolEncoder()
        coder = tables.coder(context)
        z_hat = coder.compress(z + 0.2, encoder)
        assert np.array_equal(coder.symbols, symbols) and torch.equal(z_hat, z)
        decoder = tables.coder(context)
        assert torch.equal(decoder.decompress(z.shape, SymbolDecoder(encoder.finish())), z)
        assert np.array_equal(decoder.symbols, symbols)
        bits.append(encoder.ideal_bits)
    assert bits[0] < 0.7 * bits[1]
    with pytest.raises(InputError, match="previous hyper-latent"):
        tables.coder(previous[:, :, :-1]).compress(z, SymbolEncoder())


# ----------------------------------------------------------------------------- codec
@pytest.fixture(scope="module")
def mc_weights(tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(3)
    image = frozen_image_model(tiny_weights)
    residual = frozen_image_model(tiny_weights)
    model = MotionCompensatedVideoModel(MotionCompensatedConfig(image.config), image, residual)
    path = tmp_path_factory.mktemp("mc") / "tiny-mc.safetensors"
    export_mc_model(model, path, model_id="tiny-mc")
    return path


def _codec(weights: Path) -> MotionCompensatedVideoCodec:
    return MotionCompensatedVideoCodec.from_weights(load_weights_file(weights))


def _sliding(count: int, height: int = 50, width: int = 70) -> list[np.ndarray]:
    scene = _textured(height + 3 * count, width + 3 * count, seed=4)
    return [np.ascontiguousarray(scene[2 * t:2 * t + height, 3 * t:3 * t + width]) for t in range(count)]


def test_decoded_frames_equal_the_encoders_reconstructions(mc_weights: Path):
    codec = _codec(mc_weights)
    frames = _sliding(6)
    info = VideoInfo(70, 50, Fraction(25), 6)
    payload, stats = codec.encode_frames(frames, info, quality=2, gop=4, keep_reconstructions=True,
                                         adaptive_intra=False)
    assert payload.codec == "video-mc" and payload.metadata["frames"] == 6
    decoded = list(codec.decode_frames(payload))
    assert all(np.array_equal(a, b) for a, b in zip(decoded, stats["reconstructions"]))
    # I-frames (0 and 4) decode to the image model's own reconstruction of the frame
    image_payload, image_reconstruction, _ = codec.intra.compress(
        torch.from_numpy(frames[4]).permute(2, 0, 1)[None].float() / 255.0, quality=2)
    assert np.abs(decoded[4].astype(int) - np.rint(255 * image_reconstruction[0].permute(1, 2, 0).numpy())).max() <= 1


def test_p_frame_is_the_motion_compensated_prediction_plus_the_residual(tiny_weights: Path, tmp_path: Path):
    image, residual = frozen_image_model(tiny_weights), frozen_image_model(tiny_weights)
    last = [m for m in residual.g_s.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))][-1]
    with torch.no_grad():  # a residual decoder that outputs zero: the P-frame is the prediction itself
        last.weight.zero_()
        last.bias.zero_()
    path = tmp_path / "zero-residual.safetensors"
    export_mc_model(MotionCompensatedVideoModel(MotionCompensatedConfig(image.config), image, residual), path, "zero")
    codec = _codec(path)
    frames = _sliding(3)
    payload, stats = codec.encode_frames(frames, VideoInfo(70, 50, Fraction(25), 3), gop=3,
                                         keep_reconstructions=True, adaptive_intra=False)
    first, second, _ = stats["reconstructions"]
    lmbda = lambda_at(codec.intra.image.config.lambdas, codec.intra.level_of(None))
    motion = estimate_motion(first, frames[1], codec.motion_rate_weight / lmbda**0.5)
    prediction = predict(first, motion, overlapped=True)
    assert np.array_equal(second, apply_filter(prediction, fit_filter(prediction, frames[1])))


FLAGS = ("overlapped_motion", "cropped_latent", "filtered_prediction", "temporal_motion", "temporal_hyper_latent")


def test_files_record_their_coding_tools_and_older_files_decode(mc_weights: Path):
    frames, info = _sliding(4), VideoInfo(70, 50, Fraction(25), 4)
    codec = _codec(mc_weights)
    payload, stats = codec.encode_frames(frames, info, gop=4, keep_reconstructions=True, adaptive_intra=False)
    assert all(payload.metadata[flag] is True for flag in FLAGS)
    older = _codec(mc_weights)  # an encoder of an earlier version: block motion, whole padded latents, no filter,
    older.overlaps_motion = older.crops_latents = older.filters_prediction = False  # spatial motion coding
    older.codes_motion_temporally = older.codes_hyper_latent_temporally = False
    legacy, legacy_stats = older.encode_frames(frames, info, gop=4, keep_reconstructions=True, adaptive_intra=False)
    assert not set(FLAGS) & legacy.metadata.keys()
    for coded, expected in ((payload, stats), (legacy, legacy_stats)):
        decoded = list(_codec(mc_weights).decode_frames(coded))
        assert all(np.array_equal(a, b) for a, b in zip(decoded, expected["reconstructions"]))
    assert not np.array_equal(stats["reconstructions"][1], legacy_stats["reconstructions"][1])
    for flag in FLAGS:
        crafted = dataclasses.replace(payload, metadata={**payload.metadata, flag: 1})
        with pytest.raises(CorruptFileError, match=flag):
            list(codec.decode_frames(crafted))


def test_i_frames_are_coded_at_a_higher_level_that_the_file_records(mc_weights: Path):
    codec = _codec(mc_weights)  # two levels: quality 1 is level 0, its I-frames go to level min(0 + boost, 1)
    frames = _sliding(3)
    payload, stats = codec.encode_frames(frames, VideoInfo(70, 50, Fraction(25), 3), quality=1, gop=3,
                                         keep_reconstructions=True, adaptive_intra=False)
    assert payload.metadata["level"] == 0.0 and payload.metadata["intra_level"] == 1.0
    _, image_reconstruction, _ = codec.intra.compress(torch.from_numpy(frames[0]).permute(2, 0, 1)[None] / 255.0,
                                                      quality=2)
    assert np.abs(stats["reconstructions"][0].astype(int)
                  - np.rint(255 * image_reconstruction[0].permute(1, 2, 0).numpy())).max() <= 1
    assert [f.tobytes() for f in codec.decode_frames(payload)] == [f.tobytes() for f in stats["reconstructions"]]
    # at the top level there is nothing to add: the key is left out, as in files of earlier versions
    top, _ = codec.encode_frames(frames[:1], VideoInfo(70, 50, Fraction(25), 1), quality=2, gop=3)
    assert "intra_level" not in top.metadata
    for bad in (2.0, -1.0, "1", None):
        crafted = dataclasses.replace(payload, metadata={**payload.metadata, "intra_level": bad})
        with pytest.raises(CorruptFileError, match="gain level"):
            list(codec.decode_frames(crafted))


def test_corrupt_p_frame_is_a_clear_error(mc_weights: Path):
    codec = _codec(mc_weights)
    payload, _ = codec.encode_frames(_sliding(3), VideoInfo(70, 50, Fraction(25), 3), gop=3, adaptive_intra=False)
    data = bytearray(payload.sections["frames"])
    offset = payload.metadata["frame_bytes"][0]
    for position in range(offset, len(data)):
        data[position] ^= 0x5A
    with pytest.raises(CorruptFileError):
        list(codec.decode_frames(dataclasses.replace(payload, sections={"frames": bytes(data)})))


def test_file_round_trip_through_the_cli(mc_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    source = tmp_path / "clip.y4m"
    with open_video_writer(source, VideoInfo(70, 50, Fraction(25))) as writer:
        for frame in _sliding(4):
            writer.write(frame)
    assert main(["encode", str(source), str(tmp_path / "clip.ncd"), "--model", str(mc_weights), "--gop", "3",
                 "--verify", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["codec"] == "video-mc" and stats["frames"] == 4 and stats["verified"] is True
    assert read_file(tmp_path / "clip.ncd").metadata["gop"] == 3
    assert main(["decode", str(tmp_path / "clip.ncd"), str(tmp_path / "out.y4m"), "--model", str(mc_weights)]) == 0
    with open_video(tmp_path / "out.y4m") as reader:
        assert len(list(reader)) == 4


def test_training_cli_makes_residual_samples_and_a_working_model(tiny_weights: Path, tmp_path: Path):
    clips = tmp_path / "clips" / "clip1"
    clips.mkdir(parents=True)
    for index, frame in enumerate(moving_frames(3, 64, 80)):
        Image.fromarray(frame).save(clips / f"im{index + 1}.png")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(_textured(200, 220)).save(photos / "p.png")
    out = tmp_path / "run"
    args = ["train", "video-mc", "--data", str(tmp_path / "clips"), "--synthetic-from", str(photos),
            "--synthetic-pairs", "6", "--crop", "64", "--crops-per-window", "2", "--init-from", str(tiny_weights),
            "--out", str(out), "--steps", "2", "--batch-size", "2", "--validate-every", "2", "--device", "cpu",
            "--val-fraction", "0.2"]
    assert main(args) == 0
    residuals = torch.load(out / "residuals-synthetic.pt", weights_only=True)["latents"]
    assert residuals.shape == (6, 4, 64, 64) and residuals.dtype == torch.int16
    assert set(residuals[:, 3, 0, 0].tolist()) <= {0, 1}  # each sample's level plane
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any(any(key.endswith("_bpp") and key.startswith("val_L") for key in record) for record in log)
    weights = load_weights_file(out / "model.safetensors")
    assert weights.codec == "video-mc"
    codec = MotionCompensatedVideoCodec.from_weights(weights)
    payload, stats = codec.encode_frames(_sliding(3), VideoInfo(70, 50, Fraction(25), 3), gop=3,
                                         keep_reconstructions=True)
    assert all(np.array_equal(a, b) for a, b in zip(codec.decode_frames(payload), stats["reconstructions"]))


def test_videos_go_to_the_motion_compensated_codec_by_default(tmp_path: Path):
    from neuralcodec.codecs.registry import family_for_input
    from neuralcodec.pretrained import default_model

    source = tmp_path / "clip.y4m"
    with open_video_writer(source, VideoInfo(70, 50, Fraction(25))) as writer:
        writer.write(_sliding(1)[0])
    assert family_for_input(source).name == "video-mc"
    assert default_model("video-mc").model_id == "video-mc-vr9c"


def test_decoding_does_not_depend_on_the_thread_count(mc_weights: Path):
    codec = _codec(mc_weights)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        payload, stats = codec.encode_frames(_sliding(4, 64, 96), VideoInfo(96, 64, Fraction(25), 4), gop=4,
                                             keep_reconstructions=True)
        torch.set_num_threads(1)
        decoded = list(codec.decode_frames(payload))
    finally:
        torch.set_num_threads(threads)
    assert all(np.array_equal(a, b) for a, b in zip(decoded, stats["reconstructions"]))


# ----------------------------------------------------------------------------- frames coded with a context model
def test_shipped_model_codes_i_frames_with_the_context_model_and_files_name_it():
    from neuralcodec.codecs.registry import load_codec
    from neuralcodec.codecs.video.context_models import CONTEXT_MODEL
    from neuralcodec.errors import ModelMismatchError

    codec = load_codec("video-mc-vr9c")
    frames, info = _sliding(3, 64, 96), VideoInfo(96, 64, Fraction(25), 3)
    payload, stats = codec.encode_frames(frames, info, quality=3, gop=3, keep_reconstructions=True,
                                         adaptive_intra=False)
    assert payload.metadata["intra_context"].startswith(CONTEXT_MODEL + "@")
    payload = container.read(container.write(payload))  # as a file holds it
    assert [f.tobytes() for f in load_codec("video-mc-vr9c").decode_frames(payload)] \
        == [f.tobytes() for f in stats["reconstructions"]]
    plain = load_codec("video-mc-vr9c")
    plain.intra_context = None  # the previous encoder: the video model's own hyperprior, files without the entry
    older, older_stats = plain.encode_frames(frames, info, quality=3, gop=3, keep_reconstructions=True,
                                             adaptive_intra=False)
    assert "intra_context" not in older.metadata
    assert [f.tobytes() for f in codec.decode_frames(older)] == [f.tobytes() for f in older_stats["reconstructions"]]
    assert stats["frame_bytes"][0] < older_stats["frame_bytes"][0]  # the I-frame
    entry = payload.metadata["intra_context"]
    for bad, error in ((CONTEXT_MODEL, CorruptFileError), (7, CorruptFileError),
                       ("hclt-mnist@" + entry[-16:], CorruptFileError), ("no-such-model@" + entry[-16:], CorruptFileError),
                       (CONTEXT_MODEL + "@" + "0" * 16, ModelMismatchError)):
        crafted = dataclasses.replace(payload, metadata={**payload.metadata, "intra_context": bad})
        with pytest.raises(error):
            list(load_codec("video-mc-vr9c").decode_frames(crafted))


def test_models_without_a_named_hyperprior_code_with_their_own(mc_weights: Path):
    from neuralcodec.codecs.registry import load_codec

    codec = _codec(mc_weights)
    assert codec.intra_context is None
    payload, _ = codec.encode_frames(_sliding(2), VideoInfo(70, 50, Fraction(25), 2), gop=2)
    assert "intra_context" not in payload.metadata
    entry = load_codec("video-mc-vr9c").intra_context  # built on another hyperprior
    crafted = dataclasses.replace(payload, metadata={**payload.metadata, "intra_context": entry})
    with pytest.raises(CorruptFileError, match="intra_context"):
        list(codec.decode_frames(crafted))
