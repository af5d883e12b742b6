"""Spatial-channel context entropy model on top of a trained hyperprior (after He et al., "ELIC", 2022).

The hyperprior's transforms and hyper-latent stay as they are; what changes is the model of the gained
latent ``y``. Its channels (in a fixed order, most informative first) are split into a few uneven
groups coded one after the other; each group is coded in two checkerboard passes (anchors, ``(i + j)``
even, then the rest). A group's Gaussian means and scales come from a small parameter network (three
linear layers, run only at the positions of its pass) that sees

- the hyperprior's means and log-scales of the group's channels, and an embedding of all of them,
- a channel context: the already decoded groups, through a 3x3 convolution,
- a spatial context (second pass only): the group's decoded anchors, through a 5x5 convolution.

The networks predict *corrections* of the hyperprior's parameters, ``μ = μ_h + g·Δμ`` and
``σ = σ_h·exp(Δs)``, and their last layers start at zero: an untrained context model is exactly the
hyperprior, and training on cached latents starts from its rate. Everything runs on gain-free values
(``ŷ / g``, the same statistics at every rate level) except the hyperprior's log-scale, which tells
the networks how fine the quantization is relative to the signal.

Training (``forward``) follows the decoder's order exactly: each group's context is the decoded
``round(y - μ) + μ`` of the earlier groups and of its own anchors (detached), and the rate is that of
the coded bins, with a straight-through gradient (the transforms are frozen, so the latent is fixed and
its exact rate is what the model can lower).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from neuralcodec.codecs.common.checkerboard import anchor_mask
from neuralcodec.codecs.image.model import HyperpriorConfig, ImageHyperprior
from neuralcodec.entropy.models import GaussianConditionalPrior
from neuralcodec.entropy.tables import SCALE_MIN


@dataclass(frozen=True)
class ContextConfig:
    """Architecture of a :class:`SpatialChannelContext` (stored with its weights, key ``context``)."""

    groups: tuple[int, ...] = (8, 8, 16, 32, 64)
    """Channels per group, coded in this order; they sum to the latent's channels M."""
    checkerboard: bool = True
    """Code every group in two passes (anchors, then the rest with the anchors as spatial context)."""
    hidden: int = 96
    """Width of the parameter networks."""
    context_channels: int = 48
    """Width of the channel- and spatial-context features."""
    channel_layers: int = 1
    """3x3 convolutions (each followed by a leaky ReLU) from the decoded earlier groups to the channel
    context; at most 2, which keeps the networks' receptive field within 2 latent rows."""
    channel_order: tuple[int, ...] = field(default_factory=tuple)
    """Latent channels in coding order (empty: 0 ... M-1)."""

    def __post_init__(self) -> None:
        if self.channel_layers not in (1, 2):
            raise ValueError(f"channel_layers is {self.channel_layers}; 1 or 2 are supported")

    def order(self, m: int) -> list[int]:
        """The coding order of ``m`` latent channels (checked to be a permutation)."""
        order = list(self.channel_order) if self.channel_order else list(range(m))
        if sorted(order) != list(range(m)) or sum(self.groups) != m or min(self.groups) < 1:
            raise ValueError(f"groups {self.groups} / channel order do not partition {m} channels")
        return order

    def slices(self) -> Iterator[slice]:
        """The channel range of each group, in coding order."""
        start = 0
        for size in self.groups:
            yield slice(start, start + size)
            start += size

    def to_dict(self) -> dict:
        return {"groups": list(self.groups), "checkerboard": self.checkerboard, "hidden": self.hidden,
                "context_channels": self.context_channels, "channel_layers": self.channel_layers,
                "channel_order": list(self.channel_order)}

    @classmethod
    def from_dict(cls, data: dict) -> ContextConfig:
        return cls(groups=tuple(int(g) for g in data["groups"]), checkerboard=bool(data["checkerboard"]),
                   hidden=int(data["hidden"]), context_channels=int(data["context_channels"]),
                   channel_layers=int(data.get("channel_layers", 1)), channel_order=tuple(int(c) for c in data["channel_order"]))


def checkerboard_positions(height: int, width: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indexes (row-major) of the anchors and of the other positions of an ``height`` x ``width`` latent."""
    anchors = anchor_mask(height, width, device).flatten().bool()
    return anchors.nonzero().flatten(), (~anchors).nonzero().flatten()


def gather(t: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
    """(B, P, C) values of (B, C, H, W) ``t`` at the flat ``positions`` (all of them, as (B, H*W, C), for None)."""
    flat = t.flatten(2)
    return (flat if positions is None else flat.index_select(2, positions)).transpose(1, 2)


def rounded_likelihood(conditional: GaussianConditionalPrior, y: torch.Tensor, means: torch.Tensor,
                       scales: torch.Tensor) -> torch.Tensor:
    """Likelihood of the coded bin ``round(y - μ)`` (exact in the forward pass); the gradient flows as if
    the residual were not rounded (straight-through), so means learn too."""
    residual = y - means
    rounded = residual + (torch.round(residual) - residual).detach()
    return conditional.likelihood(rounded + means, scales, means)


class SpatialChannelContext(nn.Module):
    """The parameter networks of every group (see the module docstring)."""

    def __init__(self, m: int, config: ContextConfig) -> None:
        super().__init__()
        self.config = config
        self.m = m
        order = config.order(m)
        self.register_buffer("order", torch.tensor(order), persistent=False)
        self.register_buffer("inverse_order", torch.argsort(torch.tensor(order)), persistent=False)
        ctx, hidden = config.context_channels, config.hidden
        self.hyper_embedding = nn.Sequential(nn.Conv2d(2 * m, ctx, 1), nn.LeakyReLU(inplace=True))
        self.channel_context = nn.ModuleList()
        self.spatial_context = nn.ModuleList()
        self.aggregation = nn.ModuleList()
        for index, group in enumerate(config.slices()):
            size, before = group.stop - group.start, group.start
            inputs = 2 * size + ctx
            if index > 0:
                layers = [nn.Conv2d(before, ctx, 3, padding=1), nn.LeakyReLU(inplace=True)]
                for _ in range(config.channel_layers - 1):
                    layers += [nn.Conv2d(ctx, ctx, 3, padding=1), nn.LeakyReLU(inplace=True)]
                self.channel_context.append(nn.Sequential(*layers))
                inputs += ctx
            if config.checkerboard:
                self.spatial_context.append(nn.Conv2d(size, ctx, 5, padding=2))
                inputs += ctx
            last = nn.Linear(hidden, 2 * size)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.aggregation.append(nn.Sequential(
                nn.Linear(inputs, hidden), nn.LeakyReLU(inplace=True),
                nn.Linear(hidden, hidden), nn.LeakyReLU(inplace=True), last))

    def permuted(self, t: torch.Tensor) -> torch.Tensor:
        """Channels of ``t`` (B, M, ...) in coding order."""
        return t.index_select(1, self.order)

    def unpermuted(self, t: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`permuted`."""
        return t.index_select(1, self.inverse_order)

    def hyper_features(self, means: torch.Tensor, scales: torch.Tensor, gain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The hyperprior's gain-free means and log-scales (coding order, (B, 2M, h, w)), and their
        embedding that every group sees."""
        features = torch.cat([means / gain, scales.clamp_min(SCALE_MIN).log()], dim=1)
        return features, self.hyper_embedding(features)

    def group_inputs(self, index: int, features: torch.Tensor, embedding: torch.Tensor,
                     decoded: torch.Tensor | None) -> torch.Tensor:
        """What both passes of group ``index`` see: its own hyperprior features, the shared embedding and
        the channel context of ``decoded`` (the gain-free decoded earlier groups; None for the first)."""
        group = list(self.config.slices())[index]
        parts = [features[:, group], features[:, self.m + group.start:self.m + group.stop], embedding]
        if index > 0:
            parts.append(self.channel_context[index - 1](decoded))
        return torch.cat(parts, dim=1)

    def group_parameters(self, index: int, inputs: torch.Tensor, anchors: torch.Tensor | None,
                         means: torch.Tensor, scales: torch.Tensor, gain: torch.Tensor,
                         positions: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(means, scales), gained, of group ``index`` at the flat ``positions`` ((B, P, c); all positions
        for None). ``inputs``: :meth:`group_inputs`; ``anchors``: the group's gain-free decoded anchors,
        zeros elsewhere (None in the anchor pass); ``means``/``scales``/``gain``: the hyperprior's, (B, c, h, w)."""
        inputs = gather(inputs, positions)
        if self.config.checkerboard:
            spatial = self.spatial_context[index]
            context = (gather(spatial(anchors), positions) if anchors is not None
                       else spatial.bias.expand(*inputs.shape[:2], -1))
            inputs = torch.cat([inputs, context], dim=2)
        delta_mean, delta_log_scale = self.aggregation[index](inputs).chunk(2, dim=2)
        return (gather(means, positions) + gather(gain, None) * delta_mean,
                gather(scales, positions).clamp_min(SCALE_MIN) * delta_log_scale.exp())

    def passes(self, height: int, width: int, device: torch.device | str = "cpu") -> list[torch.Tensor | None]:
        """Flat positions of each pass of a group: anchors then the rest, or one pass over all (None)."""
        return list(checkerboard_positions(height, width, device)) if self.config.checkerboard else [None]

    def forward(self, y: torch.Tensor, means: torch.Tensor, scales: torch.Tensor, gain: torch.Tensor,
                conditional: GaussianConditionalPrior, noisy_rate: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Likelihoods (B, M*H*W, in coding order, position-major within a pass) of the coded bins of the gained latent ``y`` given the
        hyperprior's ``means``/``scales`` and the (B, M, 1, 1) ``gain``, and the decoded ``ŷ`` (B, M, H, W).
        ``noisy_rate``: the likelihoods of ``y`` plus uniform noise instead (the usual rate proxy when the
        transforms train too); the contexts and ``ŷ`` are the decoded values either way."""
        y, means, scales, gain = (self.permuted(t) for t in (y, means, scales, gain))
        batch, _, height, width = y.shape
        features, embedding = self.hyper_features(means, scales, gain)
        decoded: list[torch.Tensor] = []
        likelihoods = []
        for index, group in enumerate(self.config.slices()):
            g_k = gain[:, group]
            inputs = self.group_inputs(index, features, embedding,
                                       torch.cat(decoded, dim=1) / gain[:, :group.start] if decoded else None)
            y_hat = y.new_zeros(batch, group.stop - group.start, height * width)
            for step, positions in enumerate(self.passes(height, width, y.device)):
                anchors = y_hat.view(batch, -1, height, width) / g_k if step else None
                mu, sigma = self.group_parameters(index, inputs, anchors, means[:, group], scales[:, group], g_k, positions)
                y_k = gather(y[:, group], positions)
                likelihoods.append((conditional(y_k, sigma, means=mu, training=True)[1] if noisy_rate
                                    else rounded_likelihood(conditional, y_k, mu, sigma)).flatten(1))
                values = (torch.round(y_k - mu) + mu).detach().transpose(1, 2)
                y_hat = y_hat.index_copy(2, positions, values) if positions is not None else values
            decoded.append(y_hat.view(batch, -1, height, width))
        return torch.cat(likelihoods, dim=1), self.unpermuted(torch.cat(decoded, dim=1))


CONTEXT_KEY = "context"
"""Config entry of an image weights file that makes it a context model."""


@dataclass(frozen=True)
class ImageContextConfig:
    """A hyperprior's architecture plus its context model's."""

    image: HyperpriorConfig
    context: ContextConfig

    @property
    def levels(self) -> int:
        return self.image.levels

    @property
    def lambdas(self) -> tuple[float, ...]:
        return self.image.lambdas

    def to_dict(self) -> dict:
        return {"image": self.image.to_dict(), CONTEXT_KEY: self.context.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> ImageContextConfig:
        return cls(HyperpriorConfig.from_dict(data["image"]), ContextConfig.from_dict(data[CONTEXT_KEY]))


class ImageContextModel(nn.Module):
    """A (mean-scale) :class:`ImageHyperprior` whose latent is modelled by a :class:`SpatialChannelContext`."""

    def __init__(self, config: ImageContextConfig, image_model: ImageHyperprior | None = None) -> None:
        super().__init__()
        if not config.image.mean_scale:
            raise ValueError("the context model needs a mean-scale hyperprior")
        self.config = config
        self.image = image_model if image_model is not None else ImageHyperprior(config.image)
        if self.image.config != config.image:
            raise ValueError("image model config differs from the context model's")
        self.context = SpatialChannelContext(config.image.m, config.context)

    def latent_gain(self, level: torch.Tensor) -> torch.Tensor:
        """(B, M, 1, 1) latent gains of the image model at ``level`` (B,)."""
        ones = torch.ones(level.shape[0], self.config.image.m, 1, 1, device=level.device)
        return self.image.latent_gain.scale(ones, level)

    def latent_likelihoods(self, y: torch.Tensor, z_hat: torch.Tensor, level: torch.Tensor,
                           noisy_rate: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(likelihoods, ŷ) of the gained latent ``y`` given the decoded hyper-latent ``z_hat`` (see
        :meth:`SpatialChannelContext.forward` for ``noisy_rate``)."""
        means, scales = (t.float() for t in self.image.hyper_decode(z_hat, level))
        return self.context(y.float(), means, scales, self.latent_gain(level), self.image.gaussian_conditional,
                            noisy_rate)

    def forward(self, x: torch.Tensor, level: torch.Tensor | float) -> dict:
        """As :meth:`ImageHyperprior.forward` (images in [0, 1], sides multiples of 64), with the context
        model's likelihoods of ``y`` (of ``y`` plus uniform noise in training); the reconstruction is that of the
        decoded latent, and the distortion's gradient reaches the analysis transform straight through the
        rounding (end-to-end fine-tuning)."""
        level = self.image._as_level(level, x)
        y = self.image.latent_gain.scale(self.image.g_a(x), level)
        z = self.image.hyper_gain.scale(self.image.h_a(y), level)
        z_hat, z_likelihoods = self.image.entropy_bottleneck(z.float())
        # Training: the rate of y + noise (the straight-through rate of the coded bins gives the latents near a
        # mean no pull towards it, and end-to-end training then drifts to higher rates: +1.2% BD-rate measured).
        y_likelihoods, y_hat = self.latent_likelihoods(y, z_hat, level, noisy_rate=self.training)
        y_hat = y + (y_hat - y).detach()  # the decoded values, with a straight-through gradient to g_a
        x_hat = self.image.g_s(self.image.latent_gain.unscale(y_hat, level))
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def aux_parameters(self) -> list[nn.Parameter]:
        """The hyperprior's auxiliary parameters (see :meth:`ImageHyperprior.aux_parameters`)."""
        return self.image.aux_parameters()

    def aux_loss(self) -> torch.Tensor:
        """The hyperprior's auxiliary loss (its factorized prior's quantiles, for the coding tables)."""
        return self.image.aux_loss()
