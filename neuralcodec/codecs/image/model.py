"""Hyperprior image codec: scale hyperprior (Ballé et al. 2018) and its mean-scale variant
(Minnen et al. 2018, without the serial autoregressive context), with gain units so that one set of
weights covers a range of rates (``level`` 0 = lowest rate ... ``levels-1`` = highest).

Training: ``forward(x, level)`` returns the reconstruction and the likelihoods the rate loss uses.
Coding: ``compress``/``decompress`` (see :mod:`neuralcodec.codecs.image_coding`) push exactly those
likelihood models through the shared constriction backend.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from neuralcodec.codecs.common.gain import GainUnit, log_gains_for_lambdas
from neuralcodec.codecs.common.transforms import (
    ANALYSIS_STRIDE,
    HYPER_STRIDE,
    analysis_transform,
    check_hyper_layout,
    hyper_analysis,
    hyper_synthesis,
    synthesis_transform,
)
from neuralcodec.entropy.models import FactorizedPrior, GaussianConditionalPrior

PAD_MULTIPLE = ANALYSIS_STRIDE * HYPER_STRIDE
"""Image sides are padded to a multiple of this before the transforms (and cropped back after)."""

DEFAULT_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483)
"""Rate-distortion trade-offs (MSE on [0,1] images scaled by 255^2) of the gain levels, low to high rate."""


@dataclass(frozen=True)
class HyperpriorConfig:
    """Architecture of an :class:`ImageHyperprior` (stored with its weights)."""

    n: int = 128
    m: int = 192
    mean_scale: bool = True
    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS
    in_channels: int = 3
    hyper_layout: str = "ramp"
    """Layout of the hyper transforms (see :data:`~neuralcodec.codecs.common.transforms.HYPER_LAYOUTS`)."""

    def __post_init__(self) -> None:
        check_hyper_layout(self.hyper_layout)

    @property
    def levels(self) -> int:
        return len(self.lambdas)

    def to_dict(self) -> dict:
        return {**asdict(self), "lambdas": list(self.lambdas)}

    @classmethod
    def from_dict(cls, data: dict) -> "HyperpriorConfig":
        return cls(**{**data, "lambdas": tuple(data["lambdas"])})


def padded_side(side: int) -> int:
    """``side`` rounded up to the transforms' multiple (what images are padded to)."""
    return -(-side // PAD_MULTIPLE) * PAD_MULTIPLE


def pad_to_multiple(x: torch.Tensor, multiple: int = PAD_MULTIPLE) -> torch.Tensor:
    """Replicate-pad the bottom/right of (B, C, H, W) so that H and W are multiples of ``multiple``."""
    height, width = x.shape[-2:]
    pad_h = (-height) % multiple
    pad_w = (-width) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


def round_straight_through(x: torch.Tensor) -> torch.Tensor:
    """``round(x)`` forward, identity gradient backward."""
    return x + (torch.round(x) - x).detach()


class ImageHyperprior(nn.Module):
    """Variable-rate hyperprior image codec (scale or mean-scale)."""

    def __init__(self, config: HyperpriorConfig = HyperpriorConfig()) -> None:
        super().__init__()
        self.config = config
        n, m = config.n, config.m
        self.g_a = analysis_transform(config.in_channels, n, m)
        self.g_s = synthesis_transform(m, n, config.in_channels)
        self.h_a = hyper_analysis(m, n, config.hyper_layout)
        self.h_s = hyper_synthesis(n, 2 * m if config.mean_scale else m, config.hyper_layout)
        self.latent_gain = GainUnit(config.levels, m, log_gains_for_lambdas(config.lambdas))
        self.hyper_gain = GainUnit(config.levels, n)
        self.entropy_bottleneck = FactorizedPrior(n)
        self.gaussian_conditional = GaussianConditionalPrior()

    def entropy_parameters(self, hyper_params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Split the hyper-synthesis output into (means, scales); means are 0 for the scale model."""
        if self.config.mean_scale:
            scales, means = hyper_params.chunk(2, dim=1)
            return means, scales
        return torch.zeros_like(hyper_params), hyper_params

    def hyper_decode(self, z_hat: torch.Tensor, level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Entropy parameters (means, scales) of the gained latent from the quantized hyper-latent."""
        return self.entropy_parameters(self.h_s(self.hyper_gain.unscale(z_hat, level)))

    def forward(self, x: torch.Tensor, level: torch.Tensor | float) -> dict:
        """Training/evaluation pass on images in [0, 1] whose sides are multiples of PAD_MULTIPLE.

        ``level`` is a float or a (B,) tensor of gain levels. Returns ``x_hat`` and ``likelihoods``
        (``y`` and ``z``) as the rate-distortion loss expects.
        """
        level = self._as_level(level, x)
        y = self.latent_gain.scale(self.g_a(x), level)
        z = self.hyper_gain.scale(self.h_a(y), level)
        # Entropy models always run in float32 (under bf16 autocast the transforms do not).
        z_hat, z_likelihoods = self.entropy_bottleneck(z.float())
        means, scales = (t.float() for t in self.hyper_decode(z_hat, level))
        y = y.float()
        y_noisy, y_likelihoods = self.gaussian_conditional(y, scales, means=means)
        # The rate term sees additive noise; the synthesis sees the rounded latent it gets at decode
        # time (straight-through gradient), which trains the decoder on its real input distribution.
        y_hat = round_straight_through(y - means) + means if self.training else y_noisy
        x_hat = self.g_s(self.latent_gain.unscale(y_hat, level))
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def with_lambdas(self, lambdas: tuple[float, ...]) -> "ImageHyperprior":
        """A copy of this model for other rate levels: shared weights, gains of each new level started
        from the nearest trained level (see :meth:`GainUnit.remapped`), e.g. to add lower rates."""
        lambdas = tuple(lambdas)
        model = ImageHyperprior(replace(self.config, lambdas=lambdas))
        state = {k: v for k, v in self.state_dict().items() if not k.startswith(("latent_gain.", "hyper_gain."))}
        model.load_state_dict(state, strict=False)
        model.latent_gain = self.latent_gain.remapped(self.config.lambdas, lambdas, exponent=0.5)
        model.hyper_gain = self.hyper_gain.remapped(self.config.lambdas, lambdas, exponent=0.0)
        return model

    def aux_parameters(self) -> list[nn.Parameter]:
        """Parameters trained by :meth:`aux_loss` only (the factorized prior's quantiles)."""
        return self.entropy_bottleneck.aux_parameters()

    def aux_loss(self) -> torch.Tensor:
        """Loss that fits the factorized prior's quantiles (for its coding tables)."""
        return self.entropy_bottleneck.aux_loss()

    @staticmethod
    def _as_level(level: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(level):
            level = torch.tensor([float(level)])
        level = level.to(device=x.device, dtype=torch.float32).reshape(-1)
        if level.numel() == 1:
            level = level.expand(x.shape[0])
        if level.numel() != x.shape[0]:
            raise ValueError(f"level has {level.numel()} entries for a batch of {x.shape[0]}")
        return level
