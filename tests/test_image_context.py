"""The image context model (channel groups + checkerboard on a frozen hyperprior): exact coding, the
weights file, the cached latents and `codec train image-context`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from neuralcodec.cli import main
from neuralcodec.codecs.image import latent_cache
from neuralcodec.codecs.image.codec import ImageCoding, ImageHyperpriorCodec, model_from_weights
from neuralcodec.codecs.image.context import ContextConfig, ImageContextConfig, ImageContextModel
from neuralcodec.codecs.image.export import export_image_hyperprior
from neuralcodec.codecs.image.model import ImageHyperprior, pad_to_multiple
from neuralcodec.codecs.registry import load_codec
from neuralcodec.errors import CorruptFileError
from neuralcodec.media.images import list_images
from neuralcodec.pretrained import load_weights_file
from neuralcodec.train.losses import bits_per_pixel

VARIANTS = {
    "groups+checkerboard": ContextConfig(groups=(3, 3, 6, 12), hidden=16, context_channels=8),
    "groups": ContextConfig(groups=(6, 6, 12), checkerboard=False, hidden=16, context_channels=8),
    "checkerboard": ContextConfig(groups=(24,), hidden=16, context_channels=8),
    "two channel layers": ContextConfig(groups=(3, 3, 6, 12), hidden=16, context_channels=8, channel_layers=2),
}


def _image_model(tiny_weights: Path) -> ImageHyperprior:
    return model_from_weights(load_weights_file(tiny_weights))


def _context_model(tiny_weights: Path, context: ContextConfig, trained: bool = True) -> ImageContextModel:
    """The tiny hyperprior with a context model; ``trained`` gives its zero-initialized last layers random
    weights (an untrained context model is exactly the hyperprior)."""
    image = _image_model(tiny_weights)
    torch.manual_seed(1)
    order = tuple(torch.randperm(image.config.m).tolist())
    model = ImageContextModel(ImageContextConfig(image.config, ContextConfig(**{**context.__dict__, "channel_order": order})), image)
    if trained:
        with torch.no_grad():
            for network in model.context.aggregation:
                network[-1].weight.normal_(0, 0.1)
    return model.eval()


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_decoding_reproduces_the_encoder_and_the_rate_matches_the_model(tiny_weights: Path, photo: np.ndarray,
                                                                         variant: str):
    model = _context_model(tiny_weights, VARIANTS[variant])
    codec = ImageHyperpriorCodec(model, "tiny-context", b"")
    x = _tensor(photo)
    whole = x[..., :64, :128]  # no latent beyond the picture: the model's rate is the file's
    for quality in (1.0, 1.6, 2.0):
        payload, x_hat, _ = codec.compress(x, quality)  # a cropped latent
        assert torch.equal(codec.decompress(payload), x_hat)
        payload, x_hat, stats = codec.compress(whole, quality)
        assert torch.equal(codec.decompress(payload), x_hat)
        with torch.no_grad():
            out = model(whole, quality - 1)
        estimated = float(bits_per_pixel(out["likelihoods"], 1)[0])
        assert stats["ideal_bits"] == pytest.approx(estimated, rel=0.03)  # scales snap to the table


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_bands_of_latent_rows_code_like_the_whole_latent(tiny_weights: Path, photo: np.ndarray, variant: str,
                                                         monkeypatch: pytest.MonkeyPatch):
    """Large latents run the context networks band by band (bounded memory); with bands of two rows the
    means agree to float64 rounding, the file is the one-band file, byte for byte, and decodes to the encoder's reconstruction. Without
    rows of context around a band, the means are not the same (the check can fail)."""
    from neuralcodec.codecs.image import latent_coding

    codec = ImageHyperpriorCodec(_context_model(tiny_weights, VARIANTS[variant]), "c", b"")
    x = _tensor(photo)
    means: list[torch.Tensor] = []
    band_parameters = latent_coding._Band.parameters
    monkeypatch.setattr(latent_coding._Band, "parameters",
                        lambda *args: means.append(band_parameters(*args)[0]) or band_parameters(*args))

    def coded() -> tuple[ImageCoding, torch.Tensor]:
        means.clear()
        return codec.compress(x, 1.6), torch.cat([m.flatten() for m in means])

    whole, whole_means = coded()
    latent_height, latent_width = (-(-side // 64) * 4 for side in photo.shape[:2])
    monkeypatch.setattr(latent_coding, "BAND_POSITIONS", 2 * latent_width)
    assert len(latent_coding._bands(latent_height, latent_width)) == latent_height // 2
    banded, banded_means = coded()
    assert banded.payload == whole.payload and (banded_means - whole_means).abs().max() < 1e-12
    assert torch.equal(codec.decompress(banded.payload), whole.x_hat)
    monkeypatch.setattr(latent_coding, "BAND_HALO", 0)
    assert (coded()[1] - whole_means).abs().max() > 1e-4


def test_an_untrained_context_model_codes_like_its_hyperprior(tiny_weights: Path, photo: np.ndarray):
    context = ImageHyperpriorCodec(_context_model(tiny_weights, VARIANTS["groups+checkerboard"], trained=False), "c", b"")
    plain = ImageHyperpriorCodec(_image_model(tiny_weights), "p", b"")
    x = _tensor(photo)
    coded, reference = context.compress(x, 2.0), plain.compress(x, 2.0)
    assert torch.equal(coded.x_hat, reference.x_hat)
    assert coded.stats["ideal_bits"] == pytest.approx(reference.stats["ideal_bits"], rel=1e-9)
    assert coded.payload.sections["bits"] != reference.payload.sections["bits"]  # other coding order


def test_the_context_model_changes_the_rate(tiny_weights: Path, photo: np.ndarray):
    trained = ImageHyperpriorCodec(_context_model(tiny_weights, VARIANTS["groups+checkerboard"]), "c", b"")
    plain = ImageHyperpriorCodec(_image_model(tiny_weights), "p", b"")
    x = _tensor(photo)
    assert trained.compress(x, 2.0).stats["ideal_bits"] != pytest.approx(plain.compress(x, 2.0).stats["ideal_bits"], rel=1e-3)


def test_decoding_is_independent_of_thread_count(tiny_weights: Path, photo: np.ndarray):
    codec = ImageHyperpriorCodec(_context_model(tiny_weights, VARIANTS["groups+checkerboard"]), "c", b"")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        payload, x_hat, _ = codec.compress(_tensor(np.ascontiguousarray(photo[:75, :107])), 1.5)
        for count in (2, 3):
            torch.set_num_threads(count)
            assert torch.equal(codec.decompress(payload), x_hat)
    finally:
        torch.set_num_threads(threads)


def test_weights_file_round_trip_and_corruption(tiny_weights: Path, photo: np.ndarray, tmp_path: Path):
    model = _context_model(tiny_weights, VARIANTS["groups+checkerboard"])
    path = tmp_path / "context.safetensors"
    export_image_hyperprior(model, path, "tiny-context")
    codec = load_codec(str(path))
    assert isinstance(codec.model, ImageContextModel) and codec.model.config.context.groups == (3, 3, 6, 12)
    payload, x_hat, _ = codec.compress(_tensor(photo), 2.0)
    assert torch.equal(load_codec(str(path)).decompress(payload), x_hat)
    bits = bytearray(payload.sections["bits"])
    bits[len(bits) // 2] ^= 0x10
    payload.sections["bits"] = bytes(bits)
    with pytest.raises(CorruptFileError):
        codec.decompress(payload)


def test_a_file_naming_the_shipped_hyperprior_holds_only_the_context(tmp_path: Path):
    image = model_from_weights(load_weights_file(_shipped_path("hyperprior-vr9c-n96")))
    model = ImageContextModel(ImageContextConfig(image.config, ContextConfig(groups=(64, 64), hidden=8,
                                                                             context_channels=4)), image)
    path = tmp_path / "ctx.safetensors"
    export_image_hyperprior(model, path, "ctx", image_model_id="hyperprior-vr9c-n96")
    weights = load_weights_file(path)
    assert all(not key.startswith("image.") for key in weights.tensors)
    assert path.stat().st_size < 200_000
    assert isinstance(model_from_weights(weights), ImageContextModel)


def _shipped_path(model_id: str) -> Path:
    from neuralcodec.pretrained import get_model_info

    return get_model_info(model_id).path


def test_latent_cache_is_written_once_and_resumed(tiny_weights: Path, image_folder: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch):
    image = _image_model(tiny_weights)
    files = list_images(image_folder)
    first = latent_cache.cached_latents(image, files, tmp_path / "cache", {"w": 1}, count=5, crop=64, seed=0, shard_size=2)
    u, symbols = first.tensors
    assert u.shape == (5, 24, 4, 4) and u.dtype == torch.float16
    assert symbols.shape == (5, 2, 16, 1, 1) and symbols.dtype == torch.int16
    (tmp_path / "cache" / "shard-0001.pt").unlink()  # an interrupted cache: only that shard is computed again
    calls = []
    original = latent_cache.latents_of_crops
    monkeypatch.setattr(latent_cache, "latents_of_crops", lambda *a: calls.append(1) or original(*a))
    again = latent_cache.cached_latents(image, files, tmp_path / "cache", {"w": 1}, count=5, crop=64, seed=0, shard_size=2)
    assert len(calls) == 1 and all(torch.equal(a, b) for a, b in zip(first.tensors, again.tensors))
    latent_cache.cached_latents(image, files, tmp_path / "cache", {"w": 2}, count=5, crop=64, seed=0, shard_size=2)
    assert len(calls) == 4  # other settings: every shard again


def test_cli_trains_resumes_and_exports_a_context_model(tiny_weights: Path, image_folder: Path, tmp_path: Path,
                                                        photo_png: Path):
    out = tmp_path / "ctx-run"
    args = ["train", "image-context", "--init-from", str(tiny_weights), "--data", str(image_folder), "--out", str(out),
            "--groups", "6,6,12", "--hidden", "8", "--context-channels", "4", "--crops", "6", "--val-crops", "2",
            "--crop", "64", "--batch-size", "2", "--val-fraction", "0.25", "--checkpoint-every", "2", "--device", "cpu"]
    assert main(args + ["--steps", "2"]) == 0
    assert main(args + ["--steps", "4"]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in log if "rate_ratio" in r) == 4
    validation = [r for r in log if "val_mean_saving_percent" in r]
    assert [r["step"] for r in validation] == [2, 4]
    assert validation[0]["val_L0_base_bpp"] == pytest.approx(validation[1]["val_L0_base_bpp"])
    order = json.loads((out / "context_config.json").read_text())["channel_order"]
    assert sorted(order) == list(range(24))
    weights = out / "model.safetensors"
    assert main(["encode", str(photo_png), str(tmp_path / "x.ncd"), "--model", str(weights), "--verify"]) == 0
    assert main(["decode", str(tmp_path / "x.ncd"), str(tmp_path / "x.png"), "--model", str(weights)]) == 0
    # a new run continues from the exported model: its architecture, channel order and weights
    again = tmp_path / "ctx-again"
    assert main([*args[:7], str(again), *args[8:], "--context-from", str(weights), "--steps", "0",
                 "--groups", "24", "--latent-cache", str(out / "latents")]) == 0
    assert json.loads((again / "context_config.json").read_text())["channel_order"] == order
    exported, started = load_weights_file(weights).tensors, load_weights_file(again / "model.safetensors").tensors
    assert exported.keys() == started.keys() and all(torch.equal(exported[k], started[k]) for k in exported)


def test_cli_rejects_bad_groups(tiny_weights: Path, image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    code = main(["train", "image-context", "--init-from", str(tiny_weights), "--data", str(image_folder),
                 "--out", str(tmp_path / "r"), "--groups", "6,x", "--steps", "1"])
    assert code == 2 and "--groups" in capsys.readouterr().err


def test_refinement_works_with_a_context_model(tiny_weights: Path, photo: np.ndarray):
    codec = ImageHyperpriorCodec(_context_model(tiny_weights, VARIANTS["groups+checkerboard"]), "c", b"")
    x = _tensor(photo)
    plain = codec.compress(x, 2.0)
    refined = codec.compress(x, 2.0, refine_steps=3)
    assert "refined" in refined.stats and torch.equal(codec.decompress(refined.payload), refined.x_hat)
    lmbda = codec.image.config.lambdas[1]
    cost = lambda c: 8 * len(c.payload.sections["bits"]) + lmbda * 255**2 * (c.x_hat - x).pow(2).sum().item()  # noqa: E731
    assert cost(refined) <= cost(plain) + 1e-6


def test_the_distortion_reaches_the_analysis_transform_straight_through_the_context_model(tiny_weights: Path,
                                                                                          photo: np.ndarray):
    model = _context_model(tiny_weights, VARIANTS["groups+checkerboard"]).train()
    x = pad_to_multiple(_tensor(photo))[..., :64, :64]
    out = model(x, 1.0)
    torch.nn.functional.mse_loss(out["x_hat"], x).backward()
    assert model.image.g_a[0].weight.grad is not None and model.image.g_a[0].weight.grad.abs().sum() > 0


def test_image_hyperprior_training_fine_tunes_a_context_model_end_to_end(tiny_weights: Path, image_folder: Path,
                                                                        tmp_path: Path, photo_png: Path,
                                                                        capsys: pytest.CaptureFixture):
    start = tmp_path / "ctx.safetensors"
    export_image_hyperprior(_context_model(tiny_weights, VARIANTS["groups+checkerboard"]), start, "tiny-context")
    out = tmp_path / "e2e"
    args = ["train", "image-hyperprior", "--init-from", str(start), "--data", str(image_folder), "--out", str(out),
            "--crop", "64", "--batch-size", "2", "--val-fraction", "0.25", "--device", "cpu", "--lr", "1e-3"]
    assert main(args + ["--steps", "2"]) == 0
    before, after = load_weights_file(start), load_weights_file(out / "model.safetensors")
    assert after.config == before.config  # architecture, levels and channel order kept
    for name in ("image.g_a.0.weight", "image.g_s.0.weight", "context.aggregation.0.4.weight"):
        assert not torch.equal(before.tensors[name], after.tensors[name]), name
    assert main(["encode", str(photo_png), str(tmp_path / "x.ncd"), "--model", str(out / "model.safetensors"),
                 "--verify"]) == 0
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "levels"), "--lmbda", "0.02", "--lmbda", "0.04", "--change-levels",
                        "--steps", "1"]) == 2
    assert "context model" in capsys.readouterr().err


def test_the_noisy_rate_pulls_latents_towards_their_means_where_the_coded_bins_rate_does_not(tiny_weights: Path):
    """At a latent equal to its mean, the straight-through rate of the coded bin has no gradient (the bin's
    probability is flat there); the rate of the latent plus noise, used when the transforms train, has one."""
    model = _context_model(tiny_weights, VARIANTS["groups+checkerboard"], trained=False)
    m = model.config.image.m
    means, scales = torch.zeros(1, m, 4, 4), torch.full((1, m, 4, 4), 0.5)
    gain = torch.ones(1, m, 1, 1)
    gradients = {}
    for noisy in (False, True):
        torch.manual_seed(0)
        y = means.clone().requires_grad_(True)
        likelihoods, _ = model.context(y, means, scales, gain, model.image.gaussian_conditional, noisy_rate=noisy)
        (-torch.log2(likelihoods).sum()).backward()
        gradients[noisy] = y.grad.abs().sum()
    assert gradients[False] == 0 and gradients[True] > 0


def test_a_context_config_round_trips_and_older_configs_have_one_channel_layer():
    config = VARIANTS["two channel layers"]
    assert ContextConfig.from_dict(config.to_dict()) == config
    older = {key: value for key, value in VARIANTS["groups"].to_dict().items() if key != "channel_layers"}
    assert ContextConfig.from_dict(older).channel_layers == 1
    with pytest.raises(ValueError, match="channel_layers"):
        ContextConfig(groups=(24,), channel_layers=3).order(24)
