"""Inference forms of the trained transforms: the same functions, computed faster and reproducibly.

* A stride-2 transposed convolution is rewritten as one ordinary convolution that computes the four
  output phases as channels, followed by a pixel shuffle (a "sub-pixel" convolution). On the CPU,
  oneDNN's transposed convolution is slower and its rounding depends on the thread count.
* GDN's reparametrized ``beta``/``gamma`` are computed once instead of on every call, and its 1x1
  convolution runs as a BLAS matrix product (faster than oneDNN's, whose rounding also varies with the
  thread count). Small products are thread-count independent only in MKL's strict reproducibility
  mode, which the package turns on at import (see ``neuralcodec/__init__.py``).

The rewritten modules agree with the originals to float rounding (about 1e-6 relative); the codec uses
them for the encoder's reconstruction and for decoding alike, so files still decode bit-exactly.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from neuralcodec.codecs.common.gdn import GDN


class SubPixelConvolution(nn.Module):
    """A ``ConvTranspose2d`` with stride 2 and odd kernel ``k`` (padding ``k//2``, output padding 1) as a
    ``2 * ((k + 1) // 4) + 1``-sized convolution to ``4 * out_channels`` phases and a pixel shuffle."""

    def __init__(self, deconv: nn.ConvTranspose2d) -> None:
        super().__init__()
        if not self.supports(deconv):
            raise ValueError(f"no sub-pixel form for {deconv}")
        kernel = deconv.kernel_size[0]
        self.padding = (kernel + 1) // 4
        self.register_buffer("weight", _phase_weights(deconv.weight.detach(), kernel))
        self.register_buffer("bias", None if deconv.bias is None else deconv.bias.detach().repeat_interleave(4))

    @staticmethod
    def supports(deconv: nn.ConvTranspose2d) -> bool:
        """Whether ``deconv`` has the layout this rewrite handles."""
        kernel = deconv.kernel_size[0]
        return (deconv.stride == (2, 2) and deconv.kernel_size == (kernel, kernel) and kernel % 2 == 1
                and deconv.padding == (kernel // 2, kernel // 2) and deconv.output_padding == (1, 1)
                and deconv.dilation == (1, 1) and deconv.groups == 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(F.conv2d(x, self.weight, self.bias, padding=self.padding), 2)


def _phase_weights(weight: torch.Tensor, kernel: int) -> torch.Tensor:
    """The (4*out, in, s, s) kernel of the sub-pixel form of a transposed-convolution weight (in, out, k, k).

    Output pixel ``2i + a`` of the transposed convolution sums input ``i'`` times tap ``a + p - 2(i' - i)``
    (``p = k // 2``); as a correlation over the window ``i - r .. i + r`` (``r = (k + 1) // 4``, wide
    enough for every tap) the weight at window offset ``d`` is tap ``a + p - 2(d - r)``, or zero where
    that falls outside the kernel.
    """
    in_ch, out_ch = weight.shape[:2]
    pad, radius = kernel // 2, (kernel + 1) // 4
    size = 2 * radius + 1
    phases = weight.new_zeros(out_ch, 2, 2, in_ch, size, size)
    for a in (0, 1):
        for b in (0, 1):
            for dy in range(size):
                for dx in range(size):
                    ty, tx = a + pad - 2 * (dy - radius), b + pad - 2 * (dx - radius)
                    if 0 <= ty < kernel and 0 <= tx < kernel:
                        phases[:, a, b, :, dy, dx] = weight[:, :, ty, tx].t()
    return phases.reshape(4 * out_ch, in_ch, size, size)


class FrozenGDN(nn.Module):
    """A trained :class:`GDN` (or its inverse) with its parameters evaluated once."""

    def __init__(self, gdn: GDN) -> None:
        super().__init__()
        with torch.no_grad():
            beta, gamma = gdn.effective_parameters()
        self.inverse = gdn.inverse
        self.register_buffer("beta", beta.detach().clone()[:, None])
        self.register_buffer("gamma", gamma.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The 1x1 convolution as a matrix product: faster than oneDNN's 1x1 convolution here, and its
        # rounding does not depend on the thread count (with MKL's strict mode, see the module docstring).
        batch, channels, height, width = x.shape
        squares = (x * x).reshape(batch, channels, height * width)
        norm = torch.baddbmm(self.beta.expand(batch, -1, -1), self.gamma.expand(batch, -1, -1), squares)
        norm = norm.sqrt_() if self.inverse else norm.rsqrt_()
        return norm.reshape(x.shape).mul_(x)


def inference_form(transform: nn.Module) -> nn.Module:
    """A frozen copy of ``transform`` with every GDN and every stride-2 transposed convolution of the
    supported layout rewritten (other modules are kept as they are)."""
    module = copy.deepcopy(transform).eval()
    _rewrite_children(module)
    return module.requires_grad_(False)


def _rewrite_children(module: nn.Module) -> None:
    """Replace, in place and recursively, the submodules of ``module`` that have an inference form."""
    for name, child in list(module.named_children()):
        if isinstance(child, GDN):
            setattr(module, name, FrozenGDN(child))
        elif isinstance(child, nn.ConvTranspose2d) and SubPixelConvolution.supports(child):
            setattr(module, name, SubPixelConvolution(child))
        else:
            _rewrite_children(child)
