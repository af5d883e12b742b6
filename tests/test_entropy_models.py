"""Our factorized density, Gaussian conditional and GDN against compressai's (the implementations the
shipped weights were trained and exported with): same tables, likelihoods, gradients, GDN outputs and
state-dict layout. Comparisons with compressai are skipped when it is not installed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from neuralcodec.codecs.common.gdn import GDN
from neuralcodec.codecs.image.codec import model_from_weights
from neuralcodec.codecs.common.inference import FrozenGDN
from neuralcodec.codecs.image.reference import IMAGE_PREFIX, IMAGE_REFERENCE_KEY
from neuralcodec.codecs.video.codec import video_model_from_weights
from neuralcodec.entropy.models import FactorizedPrior, GaussianConditionalPrior
from neuralcodec.pretrained import list_models, load_pretrained

SHIPPED = [info.model_id for info in list_models() if info.codec in ("image-hyperprior", "video-st")]
HYPERPRIOR_IMAGE_MODEL = "hyperprior-vr9c-n96"
COMPRESSAI_CONSTANTS = {"_offset", "_quantized_cdf", "_cdf_length", "target", "likelihood_lower_bound.bound"}
"""compressai's entropy-bottleneck buffers that ours keeps out of the state dict (constants, unused tables)."""


@pytest.fixture(scope="module")
def compressai() -> SimpleNamespace:
    entropy_models = pytest.importorskip("compressai.entropy_models")
    layers = pytest.importorskip("compressai.layers")
    return SimpleNamespace(EntropyBottleneck=entropy_models.EntropyBottleneck,
                           GaussianConditional=entropy_models.GaussianConditional, GDN=layers.GDN)


def _load_model(model_id: str) -> torch.nn.Module:
    weights = load_pretrained(model_id)
    return (model_from_weights if weights.codec == "image-hyperprior" else video_model_from_weights)(weights)


def _reference_bottleneck(compressai: SimpleNamespace, ours: FactorizedPrior) -> torch.nn.Module:
    reference = compressai.EntropyBottleneck(ours.channels)
    reference.load_state_dict(ours.state_dict(), strict=False)
    return reference


def _grads(loss: torch.Tensor, tensors: list[torch.Tensor]) -> list[torch.Tensor | None]:
    return list(torch.autograd.grad(loss, tensors, allow_unused=True))


def _identical(got: list[torch.Tensor | None], expected: list[torch.Tensor | None]) -> bool:
    return len(got) == len(expected) and all(
        a is None and b is None or a is not None and b is not None and torch.equal(a, b) for a, b in zip(got, expected))


@pytest.mark.parametrize("model_id", SHIPPED)
def test_shipped_weights_load_with_exactly_their_keys(model_id: str):
    weights = load_pretrained(model_id)
    stored = set(weights.tensors)
    reference = weights.config.get(IMAGE_REFERENCE_KEY)
    if reference is not None:
        stored |= {IMAGE_PREFIX + key for key in load_pretrained(reference["model_id"]).tensors}
    assert set(_load_model(model_id).state_dict()) == stored


@pytest.mark.parametrize("model_id", SHIPPED)
def test_shipped_tables_are_rebuilt_identically(model_id: str):
    priors = [m for m in _load_model(model_id).modules() if isinstance(m, FactorizedPrior)]
    assert priors
    for prior in priors:
        shipped = prior.tables.digest()
        assert prior.build_tables().digest() == shipped


def test_factorized_prior_initialises_like_entropy_bottleneck(compressai):
    torch.manual_seed(0)
    ours = FactorizedPrior(6)
    torch.manual_seed(0)
    reference = compressai.EntropyBottleneck(6)
    reference_state = reference.state_dict()
    assert set(ours.state_dict()) == (set(reference_state) - COMPRESSAI_CONSTANTS) | {
        "_table_freqs", "_table_offsets", "_table_lengths"}
    assert all(torch.equal(value, reference_state[key]) for key, value in ours.state_dict().items()
               if not key.startswith("_table_"))
    assert torch.equal(ours.target, reference.target)
    assert [name for name, _ in ours.named_parameters()] == [name for name, _ in reference.named_parameters()]


def test_factorized_float64_pmf_equals_entropy_bottleneck(compressai):
    ours = _load_model(HYPERPRIOR_IMAGE_MODEL).entropy_bottleneck.double()
    reference = _reference_bottleneck(compressai, ours).double()
    samples = torch.linspace(-40, 40, 801, dtype=torch.float64).repeat(ours.channels, 1, 1)
    for got, expected in zip(ours.bin_likelihood(samples, stop_gradient=True),
                             reference._likelihood(samples, stop_gradient=True)):
        assert torch.equal(got, expected)


@pytest.mark.parametrize("training", [False, True])
def test_factorized_forward_and_gradients_equal_entropy_bottleneck(compressai, training: bool):
    ours = _load_model(HYPERPRIOR_IMAGE_MODEL).entropy_bottleneck
    reference = _reference_bottleneck(compressai, ours)
    torch.manual_seed(1)
    x = (torch.randn(2, ours.channels, 5, 7) * 4).requires_grad_()
    results = []
    for module in (ours, reference):
        torch.manual_seed(2)
        x_hat, likelihood = module(x, training=training)
        loss = -torch.log2(likelihood).sum() + x_hat.square().sum()
        results.append([x_hat, likelihood, *_grads(loss, [x, *module.parameters()])])
    assert _identical(*results)
    assert torch.equal(ours.likelihood(results[0][0]), results[1][1])


def test_factorized_aux_loss_equals_entropy_bottleneck(compressai):
    ours = _load_model(HYPERPRIOR_IMAGE_MODEL).entropy_bottleneck
    with torch.no_grad():
        ours.quantiles.add_(torch.randn_like(ours.quantiles))
    reference = _reference_bottleneck(compressai, ours)
    assert ours.aux_parameters() == [ours.quantiles]
    got, expected = ours.aux_loss(), reference.loss()
    assert torch.equal(got, expected)
    assert _identical(_grads(got, [ours.quantiles]), _grads(expected, [reference.quantiles]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("training", [False, True])
def test_gaussian_conditional_equals_compressai(compressai, dtype: torch.dtype, training: bool):
    ours = GaussianConditionalPrior().to(dtype)
    reference = compressai.GaussianConditional(None, scale_bound=0.11).to(dtype)
    torch.manual_seed(3)
    y = (torch.randn(2, 8, 6, 6, dtype=dtype) * 5).requires_grad_()
    means = (torch.randn_like(y) * 3).requires_grad_()
    scales = torch.exp(torch.empty_like(y).uniform_(-5, 4)).requires_grad_()  # some below the 0.11 bound
    results = []
    for module in (ours, reference):
        torch.manual_seed(4)
        y_hat, likelihood = module(y, scales, means, training)
        loss = -torch.log2(likelihood).sum() + y_hat.square().sum()
        results.append([y_hat, likelihood, *_grads(loss, [y, means, scales])])
    assert _identical(*results)
    assert torch.equal(ours.likelihood(results[0][0], scales, means), results[1][1])


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_equals_compressai(compressai, inverse: bool):
    torch.manual_seed(5)
    ours = GDN(8, inverse=inverse)
    torch.manual_seed(5)
    reference = compressai.GDN(8, inverse=inverse)
    bounds = {"beta_reparam.lower_bound.bound", "gamma_reparam.lower_bound.bound"}
    assert set(ours.state_dict()) == set(reference.state_dict()) - bounds
    assert all(torch.equal(value, reference.state_dict()[key]) for key, value in ours.state_dict().items())
    with torch.no_grad():
        reference.gamma.add_(0.3 * torch.rand_like(reference.gamma) - 0.05)  # some below the bound
        reference.beta.add_(0.2 * torch.rand_like(reference.beta) - 0.05)
    ours.load_state_dict({k: v for k, v in reference.state_dict().items() if k not in bounds})
    x = torch.randn(3, 8, 5, 6, requires_grad=True)
    got, expected = ours(x), reference(x)
    assert torch.equal(got, expected)
    assert _identical(_grads(got.square().sum(), [x, ours.beta, ours.gamma]),
                      _grads(expected.square().sum(), [x, reference.beta, reference.gamma]))


def test_shipped_gdn_layers_equal_compressai(compressai):
    """The decoder's precomputed GDN parameters (FrozenGDN) and GDN outputs of a shipped model, exactly."""
    model = _load_model(HYPERPRIOR_IMAGE_MODEL)
    layers = [m for m in model.modules() if isinstance(m, GDN)]
    assert len(layers) == 6
    torch.manual_seed(6)
    for layer in layers:
        reference = compressai.GDN(layer.beta.numel(), inverse=layer.inverse)
        reference.load_state_dict(layer.state_dict(), strict=False)
        with torch.no_grad():
            frozen = FrozenGDN(layer)
            assert torch.equal(frozen.beta[:, 0], reference.beta_reparam(reference.beta))
            assert torch.equal(frozen.gamma, reference.gamma_reparam(reference.gamma))
            x = torch.randn(1, layer.beta.numel(), 9, 11)
            assert torch.equal(layer(x), reference(x))
