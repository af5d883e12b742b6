"""Encoder-side latent refinement: it lowers the coded rate-distortion cost and changes nothing for decoders."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import neuralcodec
from neuralcodec import container
from neuralcodec.cli import main
from neuralcodec.codecs.image.refinement import LATENT_STEP_SIZES, lambda_at, latent_step_size, soft_round
from neuralcodec.codecs.registry import load_codec
from neuralcodec.errors import InputError
from neuralcodec.pretrained import default_model, list_models


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0


def _coded_cost(codec, payload, x_hat: torch.Tensor, x: torch.Tensor, quality: float) -> float:
    """bits + λ·255²·SSE of a coded image: what the refinement minimizes."""
    lmbda = lambda_at(codec.model.config.lambdas, quality - 1)
    return 8 * len(payload.sections["bits"]) + lmbda * 255**2 * float((x_hat - x).pow(2).sum())


def test_lambda_at_interpolates_levels_geometrically():
    lambdas = (0.001, 0.004, 0.016)
    assert lambda_at(lambdas, 0.0) == pytest.approx(0.001)
    assert lambda_at(lambdas, 2.0) == pytest.approx(0.016)
    assert lambda_at(lambdas, 0.5) == pytest.approx(0.002)
    assert lambda_at(lambdas, 1.25) == pytest.approx(0.004 * 4**0.25)


def test_latent_step_size_grows_with_lambda_between_its_anchors():
    (low_lmbda, low_step), (high_lmbda, high_step) = LATENT_STEP_SIZES
    assert latent_step_size(low_lmbda / 10) == pytest.approx(low_step)
    assert latent_step_size(low_lmbda) == pytest.approx(low_step)
    assert latent_step_size(high_lmbda) == pytest.approx(high_step)
    assert latent_step_size(high_lmbda * 10) == pytest.approx(high_step)
    middle = math.sqrt(low_lmbda * high_lmbda)
    assert latent_step_size(middle) == pytest.approx(math.sqrt(low_step * high_step))


def test_factorized_likelihood_equals_the_one_forward_uses(tiny_weights: Path):
    prior = load_codec(str(tiny_weights)).model.entropy_bottleneck
    z = torch.randn(2, prior.channels, 3, 5) * 3
    with torch.no_grad():
        z_hat, expected = prior(z, training=False)
    assert torch.allclose(prior.likelihood(z_hat), expected)


@pytest.mark.parametrize("quality", [1.0, 1.5, 2.0])
def test_refined_file_decodes_bit_exactly_and_never_costs_more(tiny_weights: Path, photo: np.ndarray, quality: float):
    codec = load_codec(str(tiny_weights))
    x = _tensor(photo)
    plain, plain_x_hat, _ = codec.compress(x, quality)
    refined, x_hat, stats = codec.compress(x, quality, refine_steps=4)
    assert isinstance(stats["refined"], bool)
    assert torch.equal(codec.decompress(container.read(container.write(refined))), x_hat)
    assert _coded_cost(codec, refined, x_hat, x, quality) <= _coded_cost(codec, plain, plain_x_hat, x, quality)


def test_refinement_leaves_the_model_weights_alone(tiny_weights: Path, photo: np.ndarray):
    codec = load_codec(str(tiny_weights))
    before = {k: v.clone() for k, v in codec.model.state_dict().items()}
    codec.compress(_tensor(photo), 2.0, refine_steps=3)
    after = codec.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in codec.model.parameters())


def test_negative_refinement_steps_are_refused(tiny_weights: Path, photo: np.ndarray):
    with pytest.raises(InputError, match="refine_steps"):
        load_codec(str(tiny_weights)).compress(_tensor(photo), 2.0, refine_steps=-1)


@pytest.mark.skipif(not any(m.codec == "image-hyperprior" for m in list_models()), reason="no shipped image model")
def test_refinement_lowers_the_cost_of_a_shipped_model_at_its_highest_rate(photo: np.ndarray):
    codec = load_codec(default_model("image-hyperprior").model_id)
    x = _tensor(photo)
    quality = float(codec.model.config.levels)
    plain, plain_x_hat, _ = codec.compress(x, quality)
    refined, x_hat, stats = codec.compress(x, quality, refine_steps=8)
    assert stats["refined"] is True
    assert _coded_cost(codec, refined, x_hat, x, quality) < 0.99 * _coded_cost(codec, plain, plain_x_hat, x, quality)
    assert torch.equal(codec.decompress(refined), x_hat)


def test_codec_encode_refine_writes_a_file_that_decodes(tiny_weights: Path, photo_png: Path, tmp_path: Path, capsys):
    args = ["encode", str(photo_png), str(tmp_path / "a.ncd"), "--model", str(tiny_weights), "--refine", "2"]
    assert main([*args, "--verify", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert "refined" in stats and math.isfinite(stats["psnr_rgb"])
    assert main(["decode", str(tmp_path / "a.ncd"), str(tmp_path / "a.png"), "--model", str(tiny_weights)]) == 0
    assert Image.open(tmp_path / "a.png").size == Image.open(photo_png).size


def test_python_api_refines_too(tiny_weights: Path, photo_png: Path, tmp_path: Path):
    stats = neuralcodec.encode_file(photo_png, tmp_path / "b.ncd", model=str(tiny_weights), refine_steps=2)
    assert isinstance(stats["refined"], bool)


def test_codec_encode_negative_refine_is_a_one_line_error(tiny_weights: Path, photo_png: Path, tmp_path: Path, capsys):
    target = tmp_path / "c.ncd"
    assert main(["encode", str(photo_png), str(target), "--model", str(tiny_weights), "--refine", "-3"]) == 2
    err = capsys.readouterr().err
    assert "refine_steps" in err and len(err.strip().splitlines()) == 1
    assert not target.exists()


def test_soft_rounding_stays_between_floor_and_ceiling_and_hardens_as_it_cools():
    residual = torch.tensor([-1.8, -0.3, 0.2, 0.45, 0.55, 2.9]).repeat(200)
    generator = torch.Generator().manual_seed(1)
    warm = soft_round(residual, 0.5, generator)
    assert bool(((warm >= residual.floor()) & (warm <= residual.ceil())).all())
    cold = soft_round(residual, 0.01, generator)
    assert float((cold - residual.round()).abs().mean()) < 0.05
    assert float((warm - residual.round()).abs().mean()) > float((cold - residual.round()).abs().mean())


def test_refined_encoding_is_reproducible(tiny_weights: Path, photo: np.ndarray):
    codec = load_codec(str(tiny_weights))
    first, _, _ = codec.compress(_tensor(photo), 2.0, refine_steps=3)
    second, _, _ = codec.compress(_tensor(photo), 2.0, refine_steps=3)
    assert container.write(first) == container.write(second)
