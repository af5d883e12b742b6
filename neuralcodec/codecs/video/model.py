"""Spatiotemporal entropy model for learned video coding without motion estimation
(after Sun et al., "Spatiotemporal Entropy Model is All You Need for Learned Video Compression", 2021).

Every frame is coded by the *same* image autoencoder (the image hyperprior's analysis/synthesis
transforms), so the latents of all frames are identically distributed and a reconstruction never
depends on another frame: nothing propagates in pixels. What removes temporal redundancy is the
entropy model of a P-frame's gained latent ``y_t``: a Gaussian whose mean and scale are fused by 1x1
convolutions from three priors:

- a **hyperprior** computed from ``[y_t, ŷ_{t-1}]`` (side information ``z_t``, factorized prior);
- a **temporal prior** computed from the previous decoded latent ``ŷ_{t-1}``;
- a **spatial context** over the already-decoded positions of ``ŷ_t``: a *checkerboard* (He et al.
  2021) instead of the paper's serial 5x5 masked convolution, so decoding takes two parallel passes
  (anchors with ``(i + j)`` even, then the rest) instead of one position at a time.

The first frame of each group of pictures is an I-frame, coded by the image hyperprior as it is.
Rates: one model covers every gain level of the image model. The priors see latents divided by the
level's gain (``ŷ / g``, which is level-independent) and predict means and scales in that domain,
multiplied back by ``g``; the hyper-latent has its own gain unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neuralcodec.codecs.common.checkerboard import anchor_mask
from neuralcodec.codecs.common.gain import GainUnit
from neuralcodec.codecs.common.transforms import hyper_analysis, hyper_synthesis
from neuralcodec.codecs.image.model import HyperpriorConfig, ImageHyperprior
from neuralcodec.entropy.models import FactorizedPrior, GaussianConditionalPrior

SCALE_FLOOR = 1e-3
"""Lower bound of predicted (level-free) scales before the gain; the coder bounds them again at 0.11."""


@dataclass(frozen=True)
class VideoConfig:
    """Architecture of a :class:`SpatiotemporalVideoModel`: the image model's plus the P-frame prior's."""

    image: HyperpriorConfig
    hidden: int = 128
    """Width of the prior networks."""
    temporal: bool = True
    """Use ŷ_{t-1} (in the hyperprior's input and as the temporal prior). False: an ablation."""
    spatial: bool = True
    """Use the checkerboard spatial context. False: an ablation."""

    def to_dict(self) -> dict:
        return {"image": self.image.to_dict(), "hidden": self.hidden, "temporal": self.temporal,
                "spatial": self.spatial}

    @classmethod
    def from_dict(cls, data: dict) -> VideoConfig:
        return cls(image=HyperpriorConfig.from_dict(data["image"]), hidden=int(data["hidden"]),
                   temporal=bool(data["temporal"]), spatial=bool(data["spatial"]))


def _conv(cin: int, cout: int, kernel: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2)


class SpatiotemporalPrior(nn.Module):
    """The P-frame entropy model: hyperprior from [y_t, ŷ_{t-1}], temporal prior from ŷ_{t-1},
    checkerboard spatial context, and a 1x1 fusion into (mean, scale), all in the gain-free domain."""

    def __init__(self, config: VideoConfig) -> None:
        super().__init__()
        self.config = config
        m, n, hidden = config.image.m, config.image.n, config.hidden
        self.h_a = hyper_analysis(2 * m if config.temporal else m, n)
        self.h_s = hyper_synthesis(n, hidden)
        self.hyper_gain = GainUnit(config.image.levels, n)
        self.entropy_bottleneck = FactorizedPrior(n)
        self.gaussian_conditional = GaussianConditionalPrior()
        priors = 1
        if config.temporal:
            self.temporal_prior = nn.Sequential(
                _conv(m, hidden, 3), nn.LeakyReLU(inplace=True), _conv(hidden, hidden, 3),
                nn.LeakyReLU(inplace=True), _conv(hidden, hidden, 3))
            priors += 1
        if config.spatial:
            self.context = _conv(m, hidden, 5)
            priors += 1
        self.fusion = nn.Sequential(
            nn.Conv2d(priors * hidden, 2 * hidden, 1), nn.LeakyReLU(inplace=True),
            nn.Conv2d(2 * hidden, 2 * hidden, 1), nn.LeakyReLU(inplace=True),
            nn.Conv2d(2 * hidden, 2 * m, 1))

    # ----------------------------------------------------------------------------- building blocks
    def side_latent(self, u: torch.Tensor, u_prev: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """The (gained) hyper-latent ``z_t`` of gain-free latents ``u = y / g`` and ``u_prev = ŷ_{t-1} / g``."""
        inputs = torch.cat([u, u_prev], dim=1) if self.config.temporal else u
        return self.hyper_gain.scale(self.h_a(inputs), level)

    def frame_priors(self, z_hat: torch.Tensor, u_prev: torch.Tensor, level: torch.Tensor) -> list[torch.Tensor]:
        """Features that do not depend on the current latent: hyperprior (and temporal prior)."""
        priors = [self.h_s(self.hyper_gain.unscale(z_hat, level))]
        if self.config.temporal:
            priors.append(self.temporal_prior(u_prev))
        return priors

    def parameters_from(self, priors: list[torch.Tensor], u_prev: torch.Tensor,
                        u_anchors: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Gain-free (means, scales). ``u_anchors`` (decoded anchors, zeros elsewhere) adds the spatial
        context; None gives the anchors' parameters (no context yet). With the temporal prior the mean
        is predicted as a correction of the previous latent ``u_prev`` (static content costs nothing to
        learn)."""
        features = list(priors)
        if self.config.spatial:
            context = self.context(u_anchors) if u_anchors is not None else torch.zeros_like(priors[0])
            features.append(context)
        means, raw_scales = self.fusion(torch.cat(features, dim=1)).chunk(2, dim=1)
        if self.config.temporal:
            means = means + u_prev
        return means, F.softplus(raw_scales) + SCALE_FLOOR

    # ----------------------------------------------------------------------------- training
    def forward(self, y: torch.Tensor, y_prev_hat: torch.Tensor, gain: torch.Tensor, level: torch.Tensor) -> dict:
        """Likelihoods of the gained latent ``y`` (noisy, for the rate loss) given the previous decoded
        latent; also the decoded latent ``y_hat = round(y - μ) + μ`` the next frame is conditioned on.

        ``gain`` is the (B, M, 1, 1) latent gain of ``level``; the image latents come in gained."""
        u, u_prev = y / gain, y_prev_hat / gain
        z = self.side_latent(u, u_prev, level)
        z_hat, z_likelihoods = self.entropy_bottleneck(z.float())
        priors = self.frame_priors(z_hat, u_prev, level)
        means, scales = self.parameters_from(priors, u_prev, None)
        if self.config.spatial:
            anchors = anchor_mask(*y.shape[-2:], device=y.device)
            y_anchor_hat = (torch.round(y - gain * means) + gain * means).detach() * anchors
            ctx_means, ctx_scales = self.parameters_from(priors, u_prev, y_anchor_hat / gain)
            means = anchors * means + (1 - anchors) * ctx_means
            scales = anchors * scales + (1 - anchors) * ctx_scales
        means, scales = gain * means.float(), gain * scales.float()  # float32 under bf16 autocast too
        _, y_likelihoods = self.gaussian_conditional(y, scales, means=means, training=self.training)
        y_hat = (torch.round(y - means) + means).detach()
        return {"likelihoods": {"y": y_likelihoods, "z": z_likelihoods}, "y_hat": y_hat}

    def aux_parameters(self) -> list[nn.Parameter]:
        return self.entropy_bottleneck.aux_parameters()

    def aux_loss(self) -> torch.Tensor:
        return self.entropy_bottleneck.aux_loss()


class SpatiotemporalVideoModel(nn.Module):
    """The image hyperprior (I-frames and every frame's transforms) plus the P-frame prior."""

    def __init__(self, config: VideoConfig, image_model: ImageHyperprior | None = None) -> None:
        super().__init__()
        self.config = config
        self.image = image_model if image_model is not None else ImageHyperprior(config.image)
        if self.image.config != config.image:
            raise ValueError("image model config differs from the video config's")
        self.prior = SpatiotemporalPrior(config)

    def latent_gain(self, level: torch.Tensor) -> torch.Tensor:
        """(B, M, 1, 1) latent gains of the image model at ``level`` (B,)."""
        ones = torch.ones(level.shape[0], self.config.image.m, 1, 1, device=level.device)
        return self.image.latent_gain.scale(ones, level)

    def intra_latent_hat(self, y: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        """The I-frame's decoded latent ``round(y - μ) + μ`` under the image model's own hyperprior."""
        z = self.image.hyper_gain.scale(self.image.h_a(y), level)
        medians = self.image.entropy_bottleneck._medians_like(z.dim()).to(z.device)
        z_hat = torch.round(z - medians) + medians
        means, _ = self.image.hyper_decode(z_hat, level)
        return torch.round(y - means) + means

    def aux_parameters(self) -> list[nn.Parameter]:
        """The P-frame prior's auxiliary parameters (the image model stays frozen while the prior trains)."""
        return self.prior.aux_parameters()

    def aux_loss(self) -> torch.Tensor:
        return self.prior.aux_loss()
