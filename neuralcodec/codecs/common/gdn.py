"""Generalized divisive normalization (Ballé, Laparra and Simoncelli 2016) and its inverse.

``GDN``: ``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)``; the inverse multiplies by the square root
instead. ``beta`` and ``gamma`` are stored reparametrized (see :class:`NonNegative`); the state-dict
layout (``beta``, ``gamma``, ``beta_reparam.pedestal``, ``gamma_reparam.pedestal``) is the one of the
shipped weights files.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuralcodec.entropy.lower_bound import LowerBound

REPARAM_OFFSET = 2.0**-18
"""Offset of the non-negative reparametrization: its pedestal is the square of this."""


class NonNegative(nn.Module):
    """Reparametrization ``value = max(p, sqrt(minimum + pedestal))^2 - pedestal`` (>= ``minimum``), whose
    gradient stays usable near zero.

    ``pedestal`` is a stored buffer: fp16 weights files hold it rounded to 0, and loading them must give
    the transforms the shipped files were made with.
    """

    pedestal: Tensor

    def __init__(self, minimum: float = 0.0) -> None:
        super().__init__()
        pedestal = REPARAM_OFFSET**2
        self.register_buffer("pedestal", torch.tensor([pedestal], dtype=torch.float32))
        self.lower_bound = LowerBound((minimum + pedestal) ** 0.5)

    def parameter_for(self, value: Tensor) -> Tensor:
        """The stored parameter that represents ``value``."""
        return torch.sqrt(torch.max(value + self.pedestal, self.pedestal))

    def forward(self, parameter: Tensor) -> Tensor:
        return self.lower_bound(parameter) ** 2 - self.pedestal


class GDN(nn.Module):
    """GDN over the channels of (N, C, H, W) tensors (``inverse=True``: inverse GDN)."""

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_reparam = NonNegative(beta_min)
        self.beta = nn.Parameter(self.beta_reparam.parameter_for(torch.ones(channels)))
        self.gamma_reparam = NonNegative()
        self.gamma = nn.Parameter(self.gamma_reparam.parameter_for(gamma_init * torch.eye(channels)))

    def effective_parameters(self) -> tuple[Tensor, Tensor]:
        """``(beta (C,), gamma (C, C))`` after the reparametrization."""
        return self.beta_reparam(self.beta), self.gamma_reparam(self.gamma)

    def forward(self, x: Tensor) -> Tensor:
        beta, gamma = self.effective_parameters()
        channels = x.shape[1]
        norm = F.conv2d(x**2, gamma.reshape(channels, channels, 1, 1), beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))
