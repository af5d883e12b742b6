"""The spatiotemporal video codec: bit-exact decoding, rate model = coded rate, files, training, bad input."""

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
from neuralcodec.codecs.registry import load_codec
from neuralcodec.codecs.video.codec import VideoCodec
from neuralcodec.media.video import VideoInfo, open_video, open_video_writer
from neuralcodec.codecs.video.model import SpatiotemporalVideoModel, VideoConfig
from neuralcodec.container import read_file
from neuralcodec.entropy import SymbolEncoder
from neuralcodec.errors import CorruptFileError, InputError
from neuralcodec.pretrained import list_models, load_weights_file
from neuralcodec.codecs.video.export import export_video_model
from neuralcodec.codecs.video.training import frozen_image_model
from tests.test_video_io import moving_frames


def _video_weights(tiny_weights: Path, path: Path, temporal: bool = True, spatial: bool = True) -> Path:
    torch.manual_seed(1)
    image = frozen_image_model(tiny_weights)
    model = SpatiotemporalVideoModel(VideoConfig(image.config, hidden=12, temporal=temporal, spatial=spatial), image)
    export_video_model(model, path, model_id="tiny-video")
    return path


@pytest.fixture(scope="module")
def video_weights(tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _video_weights(tiny_weights, tmp_path_factory.mktemp("video") / "tiny-video.safetensors")


def _codec(weights: Path) -> VideoCodec:
    return VideoCodec.from_weights(load_weights_file(weights))


INFO = VideoInfo(70, 50, Fraction(25), 7)


@pytest.mark.parametrize("temporal, spatial", [(True, True), (False, True), (True, False)])
def test_decoded_frames_equal_the_encoders_reconstructions(tiny_weights: Path, tmp_path: Path, temporal: bool,
                                                           spatial: bool):
    codec = _codec(_video_weights(tiny_weights, tmp_path / "w.safetensors", temporal, spatial))
    frames = moving_frames(7)
    payload, stats = codec.encode_frames(frames, INFO, quality=2, gop=3, keep_reconstructions=True)
    assert payload.metadata["frames"] == 7 and len(stats["frame_bytes"]) == 7
    decoded = list(codec.decode_frames(payload))
    assert all(np.array_equal(a, b) for a, b in zip(decoded, stats["reconstructions"]))
    # every frame is the image codec's reconstruction of its own latent: I-frames match the image codec's
    # coding of the whole padded latent
    level = codec.intra.level_of(2)
    y_hat, _ = codec.intra.encode_latent(
        codec.intra.analyze(torch.from_numpy(frames[3]).permute(2, 0, 1)[None].float() / 255.0, level), level,
        SymbolEncoder())
    with torch.no_grad():
        image_reconstruction = codec.intra.synthesize(y_hat, level, INFO.height, INFO.width)
    assert np.array_equal(decoded[3], (image_reconstruction[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def test_frames_cheaper_as_i_frames_are_coded_as_i_frames(video_weights: Path):
    codec = _codec(video_weights)
    frames = moving_frames(7)
    fixed, fixed_stats = codec.encode_frames(frames, INFO, quality=2, gop=7, adaptive_intra=False)
    adaptive, stats = codec.encode_frames(frames, INFO, quality=2, gop=7, keep_reconstructions=True)
    assert fixed.metadata["intra_frames"] == [] and adaptive.metadata["intra_frames"] == stats["intra_frames"]
    # frame 1 has the same reference in both files: it holds the smaller of its P-frame and its I-frame
    p_bytes = fixed_stats["frame_bytes"][1]
    i_bytes = codec.encode_frames(frames[1:2], INFO, quality=2, gop=1)[0].metadata["frame_bytes"][0]
    assert stats["frame_bytes"][1] == min(p_bytes, i_bytes) and (1 in stats["intra_frames"]) == (i_bytes < p_bytes)
    assert all(np.array_equal(a, b) for a, b in zip(codec.decode_frames(adaptive), stats["reconstructions"]))
    for bad in ("x", [99], [-1]):
        corrupt = dataclasses.replace(adaptive, metadata={**adaptive.metadata, "intra_frames": bad})
        with pytest.raises(CorruptFileError, match="intra frames"):
            list(codec.decode_frames(corrupt))
    legacy = dataclasses.replace(fixed, metadata={k: v for k, v in fixed.metadata.items() if k != "intra_frames"})
    assert [f.tobytes() for f in codec.decode_frames(legacy)] == [f.tobytes() for f in codec.decode_frames(fixed)]


def test_decoding_is_independent_of_thread_count(video_weights: Path):
    codec = _codec(video_weights)
    payload, stats = codec.encode_frames(moving_frames(4), INFO, quality=1.5, gop=4)
    threads = torch.get_num_threads()
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            hashes = [f.tobytes() for f in codec.decode_frames(payload)]
            assert [__import__("hashlib").sha256(h).hexdigest() for h in hashes] == stats["sha256"]
    finally:
        torch.set_num_threads(threads)


def test_coded_p_frame_rate_matches_the_training_rate(video_weights: Path):
    """The bits the coder spends on a P-frame are the model's eval-mode rate, up to table snapping."""
    codec = _codec(video_weights)
    frames = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255.0 for f in moving_frames(2, 128, 128)]
    level = 1.0
    y0, y1 = (codec.intra.analyze(f, level) for f in frames)
    previous, _ = codec.intra.encode_latent(y0, level, SymbolEncoder())
    encoder = SymbolEncoder()
    codec.encode_p_frame(y1, previous, level, encoder)
    model = codec.model.eval()
    level_t = torch.tensor([level])
    with torch.no_grad():
        out = model.prior(y1, previous, model.latent_gain(level_t), level_t)
    model_bits = float(sum(-torch.log2(lik).sum() for lik in out["likelihoods"].values()))
    assert abs(encoder.ideal_bits - model_bits) / model_bits < 0.03


def test_file_round_trip_through_the_cli(video_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    source = tmp_path / "clip.y4m"
    with open_video_writer(source, VideoInfo(70, 50, Fraction(30000, 1001))) as writer:
        for frame in moving_frames(5):
            writer.write(frame)
    assert main(["encode", str(source), str(tmp_path / "clip.ncd"), "--model", str(video_weights), "--gop", "2",
                 "--verify", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["codec"] == "video-st" and stats["frames"] == 5 and stats["verified"] is True
    assert stats["bpp"] == pytest.approx(8 * (tmp_path / "clip.ncd").stat().st_size / (70 * 50 * 5), rel=1e-4)
    payload = read_file(tmp_path / "clip.ncd")
    assert payload.metadata["gop"] == 2 and (payload.metadata["fps_num"], payload.metadata["fps_den"]) == (30000, 1001)
    expected = list(load_codec(str(video_weights)).decode_frames(payload))
    for target in ("decoded.y4m", "decoded-frames"):
        assert main(["decode", str(tmp_path / "clip.ncd"), str(tmp_path / target), "--model", str(video_weights)]) == 0
    with open_video(tmp_path / "decoded-frames") as reader:
        assert all(np.array_equal(a, b) for a, b in zip(reader, expected))
    with open_video(tmp_path / "decoded.y4m") as reader:
        assert reader.info.fps == Fraction(30000, 1001) and len(list(reader)) == 5


def test_bad_inputs_give_clear_errors(video_weights: Path, tmp_path: Path):
    codec = _codec(video_weights)
    with pytest.raises(InputError, match="no frames"):
        codec.encode_frames([], INFO)
    with pytest.raises(InputError, match="group of pictures"):
        codec.encode_frames(moving_frames(2), INFO, gop=0)
    payload, _ = codec.encode_frames(moving_frames(3), INFO, gop=3)
    cut = dataclasses.replace(payload, sections={"frames": payload.sections["frames"][:-3]})
    with pytest.raises(CorruptFileError, match="does not match its index"):
        list(codec.decode_frames(cut))
    flipped = bytearray(payload.sections["frames"])
    flipped[payload.metadata["frame_bytes"][0] + 2] ^= 0xFF  # inside the first P-frame
    with pytest.raises(CorruptFileError):
        list(codec.decode_frames(dataclasses.replace(payload, sections={"frames": bytes(flipped)})))
    named = "hyperprior-ctx2-vr9c@" + "0" * 16  # video-st codes I-frames with its own model
    with pytest.raises(CorruptFileError, match="I-frames"):
        list(codec.decode_frames(dataclasses.replace(payload, metadata={**payload.metadata, "intra_context": named})))
    (tmp_path / "empty.y4m").write_bytes(b"YUV4MPEG2 W8 H8 F25:1 C420jpeg\n")
    assert main(["encode", str(tmp_path / "empty.y4m"), str(tmp_path / "e.ncd"), "--model", str(video_weights)]) == 2
    (tmp_path / "text.y4m").write_text("hello")
    assert main(["encode", str(tmp_path / "text.y4m"), str(tmp_path / "t.ncd"), "--model", str(video_weights)]) == 2
    assert not (tmp_path / "e.ncd").exists() and not (tmp_path / "t.ncd").exists()


def test_training_cli_on_real_and_synthetic_clips(tiny_weights: Path, tmp_path: Path):
    clips = tmp_path / "clips" / "clip1"
    clips.mkdir(parents=True)
    for index, frame in enumerate(moving_frames(4, 64, 80)):
        Image.fromarray(frame).save(clips / f"im{index + 1}.png")
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (200, 220, 3), dtype=np.uint8)).save(photos / "p.png")
    out = tmp_path / "run"
    args = ["train", "video-st", "--data", str(tmp_path / "clips"), "--synthetic-from", str(photos),
            "--synthetic-clips", "6", "--crop", "64", "--init-from", str(tiny_weights), "--out", str(out),
            "--prior-width", "8", "--steps", "3", "--batch-size", "2", "--validate-every", "3", "--device", "cpu",
            "--val-fraction", "0.2"]
    assert main(args) == 0
    assert (out / "latents-real.pt").is_file() and (out / "latents-synthetic.pt").is_file()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any("val_L1_p_bpp" in record and "val_L1_intra_bpp" in record for record in log)
    weights = load_weights_file(out / "model.safetensors")
    assert weights.codec == "video-st" and weights.config["hidden"] == 8
    codec = VideoCodec.from_weights(weights)
    payload, stats = codec.encode_frames(moving_frames(3), INFO, gop=3)
    assert [f.tobytes() for f in codec.decode_frames(payload)] and len(stats["psnr"]) == 3
    assert main(["train", "video-st", "--out", str(tmp_path / "r2"), "--init-from", str(tiny_weights)]) == 2


def test_synthetic_clips_follow_a_smooth_camera_motion():
    from neuralcodec.codecs.video.data import synthetic_clip

    rng = np.random.default_rng(3)
    photo = np.asarray(Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8))
                       .resize((640, 480), Image.BICUBIC))  # smooth texture
    clip = synthetic_clip(photo, length=3, crop=64, rng=rng)
    assert clip.shape == (3, 64, 64, 3) and clip.dtype == np.uint8
    step = [np.abs(clip[t + 1].astype(int) - clip[t]).mean() for t in range(2)]
    elsewhere = np.abs(photo[300:364, 400:464].astype(int) - clip[0]).mean()
    assert all(0 < d < elsewhere / 2 for d in step)  # frames move, but stay close to their predecessor
    assert synthetic_clip(photo[:60, :60], length=3, crop=64, rng=rng) is None  # too small for the motion


def test_moving_objects_cover_the_clip_where_they_pass():
    from neuralcodec.codecs.video.data import with_moving_objects

    background = np.zeros((4, 64, 80, 3), np.uint8)
    photo = np.full((200, 200, 3), 200, np.uint8)
    clip = with_moving_objects(background, [photo], count=2, rng=np.random.default_rng(5), max_speed=5.0)
    assert clip.shape == background.shape and clip.dtype == np.uint8
    covered = (clip > 0).any(axis=-1)
    assert all(covered[t].any() for t in range(4)) and not covered[0].all()
    assert not np.array_equal(covered[0], covered[3])  # the objects moved
    edge = set(np.unique(clip[..., 0]).tolist())
    assert {0, 200} <= edge and len(edge) > 2  # opaque inside, anti-aliased at the edge


@pytest.mark.parametrize("model_id", [m.model_id for m in list_models() if m.codec == "video-st"])
def test_shipped_video_models_code_p_frames_cheaper_and_exactly(model_id: str):
    codec = load_codec(model_id)
    still = moving_frames(1, 128, 192)[0]
    other = np.ascontiguousarray(np.flip(still, axis=(0, 1))[..., ::-1])
    frames = [still, still, np.roll(still, 1, axis=1), other]  # static, a one-pixel pan, then a scene cut
    info = VideoInfo(192, 128, Fraction(25), 4)
    payload, stats = codec.encode_frames(frames, info, quality=3, gop=4, keep_reconstructions=True)
    assert all(np.array_equal(a, b) for a, b in zip(codec.decode_frames(payload), stats["reconstructions"]))
    intra, p_static, p_pan, after_cut = stats["frame_bytes"]
    assert p_static < 0.5 * intra and p_pan < intra
    assert stats["intra_frames"] == [3]  # the cut is coded as an I-frame


def test_video_weights_can_name_a_shipped_image_model_instead_of_copying_it(tmp_path: Path):
    from neuralcodec.codecs.video.family import default_video_image_model
    from neuralcodec.errors import ModelMismatchError
    from neuralcodec.pretrained import get_model_info

    image_id = default_video_image_model()
    torch.manual_seed(2)
    image = frozen_image_model(image_id)
    model = SpatiotemporalVideoModel(VideoConfig(image.config, hidden=8), image)
    export_video_model(model, tmp_path / "copy.safetensors", model_id="v")
    export_video_model(model, tmp_path / "named.safetensors", model_id="v", image_model_id=image_id)
    copied, named = (load_weights_file(tmp_path / f"{name}.safetensors") for name in ("copy", "named"))
    assert not any(key.startswith("image.") for key in named.tensors)
    saved = (tmp_path / "copy.safetensors").stat().st_size - (tmp_path / "named.safetensors").stat().st_size
    assert saved > 0.99 * get_model_info(image_id).path.stat().st_size
    frames = moving_frames(3, 64, 64)
    info = VideoInfo(64, 64, Fraction(25), 3)
    streams = [codec.encode_frames(frames, info, quality=2, gop=3)[0] for codec in map(VideoCodec.from_weights,
                                                                                         (copied, named))]
    assert streams[0].sections == streams[1].sections  # the same model, bit for bit
    tampered = dataclasses.replace(named, config={**named.config, "image_weights": {"model_id": image_id,
                                                                                     "sha256": "0" * 64}})
    with pytest.raises(ModelMismatchError, match="sha256"):
        VideoCodec.from_weights(tampered)
    other = SpatiotemporalVideoModel(VideoConfig(image.config, hidden=8))  # random image weights
    with pytest.raises(InputError, match="differ"):
        export_video_model(other, tmp_path / "bad.safetensors", model_id="v", image_model_id=image_id)
    assert not (tmp_path / "bad.safetensors").exists()
