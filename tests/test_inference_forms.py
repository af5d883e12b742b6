"""The inference forms of the transforms compute the trained functions, reproducibly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuralcodec.codecs.common.gdn import GDN
from neuralcodec.codecs.common.inference import FrozenGDN, SubPixelConvolution, inference_form
from neuralcodec.codecs.common.transforms import hyper_synthesis, synthesis_transform


@pytest.mark.parametrize("kernel", [3, 5, 7, 9])
def test_sub_pixel_form_equals_the_transposed_convolution(kernel: int):
    torch.manual_seed(kernel)
    deconv = nn.ConvTranspose2d(6, 5, kernel, stride=2, padding=kernel // 2, output_padding=1).double()
    x = torch.randn(2, 6, 7, 4, dtype=torch.float64)
    with torch.no_grad():
        expected = deconv(x)
        got = SubPixelConvolution(deconv)(x)
    assert got.shape == expected.shape == (2, 5, 14, 8)
    assert torch.allclose(got, expected, rtol=0, atol=1e-12)


def test_layouts_without_a_sub_pixel_form_are_kept():
    stride_one = nn.ConvTranspose2d(4, 4, 3, stride=1, padding=1)
    even_kernel = nn.ConvTranspose2d(4, 4, 4, stride=2, padding=1)
    for deconv in (stride_one, even_kernel):
        assert not SubPixelConvolution.supports(deconv)
        with pytest.raises(ValueError, match="no sub-pixel form"):
            SubPixelConvolution(deconv)
        assert isinstance(inference_form(nn.Sequential(deconv))[0], nn.ConvTranspose2d)


@pytest.mark.parametrize("inverse", [False, True])
def test_frozen_gdn_equals_gdn(inverse: bool):
    torch.manual_seed(1)
    gdn = GDN(8, inverse=inverse)
    with torch.no_grad():
        gdn.gamma.add_(0.3 * torch.rand_like(gdn.gamma))
        gdn.beta.add_(0.2 * torch.rand_like(gdn.beta))
        x = torch.randn(3, 8, 5, 6)
        assert torch.allclose(FrozenGDN(gdn)(x), gdn(x), rtol=1e-6, atol=1e-6)


def test_inference_form_is_a_frozen_copy():
    torch.manual_seed(2)
    transform = synthesis_transform(16, 8, 3)
    original = {k: v.clone() for k, v in transform.state_dict().items()}
    fast = inference_form(transform)
    assert not any(p.requires_grad for p in fast.parameters())
    assert not any(isinstance(m, (GDN, nn.ConvTranspose2d)) for m in fast.modules())
    y = torch.randn(1, 16, 3, 5)
    with torch.no_grad():
        assert torch.allclose(fast(y), transform(y), rtol=1e-5, atol=1e-5)
    assert all(torch.equal(v, original[k]) for k, v in transform.state_dict().items())


def test_hyper_synthesis_form_in_float64():
    torch.manual_seed(3)
    transform = hyper_synthesis(8, 24).double()
    z = torch.randn(1, 8, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(inference_form(transform)(z), transform(z), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 16, 1, 1), (1, 16, 5, 7), (1, 16, 12, 9)])
def test_synthesis_form_does_not_depend_on_the_thread_count(shape: tuple[int, ...]):
    torch.manual_seed(4)
    fast = inference_form(synthesis_transform(16, 24, 3))
    y = torch.randn(shape)
    threads = torch.get_num_threads()
    outputs = []
    try:
        with torch.no_grad():
            for count in (1, 2, 3, 4):
                torch.set_num_threads(count)
                outputs.append(fast(y))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(outputs[0], out) for out in outputs[1:])
