"""Encoder-side latent refinement: optimize the latents of one image for its own rate-distortion cost.

The analysis transform predicts latents that are good on average over the training set; for a given
image, gradient steps on the latent ``y`` and the hyper-latent ``z`` themselves (with the decoder's
weights frozen) lower ``bits + λ·255²·MSE`` further (Campos et al., "Content Adaptive Optimization for
Neural Image Compression", CVPR-W 2019; Yang et al., "Improving Inference for Neural Image
Compression", NeurIPS 2020). Only the encoder changes: the refined latents are coded exactly as usual,
so any decoder reads the files and reproduces the encoder's reconstruction bit for bit.

Rounding of ``y`` is relaxed with stochastic Gumbel annealing (Yang et al.): each residual is a random
soft mix of its floor and its ceiling, weighted by how close it is to each, with a temperature that
anneals towards hard rounding; ``z`` (few values, and each one moves many entropy parameters) uses
straight-through rounding and a smaller step. Adam with cosine-decayed step sizes. The caller codes
the returned latents with hard rounding (and :meth:`ImageHyperpriorCodec.compress` keeps them only when
that costs less than the plain latents).
"""

from __future__ import annotations

import math

import torch

from neuralcodec.codecs.base import progress_bar
from neuralcodec.codecs.image.latent_coding import picture_extent
from neuralcodec.codecs.image.model import ImageHyperprior, round_straight_through

LATENT_STEP_SIZES = ((0.0035, 0.02), (0.0483, 0.05))
"""``(λ, step size)`` anchors of the Adam step size for ``y`` at the start of the schedule, in
quantization bins: constant below the first λ and above the last, geometric in ``log λ`` between.
Low rates want small steps (most latents sit at their mean, and every step moves each of them), high
rates larger ones; measured on Kodak images with the shipped default model, 10 steps."""
HYPER_LATENT_STEP_SIZE = 0.002
"""Adam step size for ``z`` at the start of the schedule, in quantization bins."""
TEMPERATURES = (0.2, 0.02)
"""Annealing temperature of the soft rounding at the first and the last step (geometric in between)."""


def lambda_at(lambdas: tuple[float, ...], level: float) -> float:
    """The rate-distortion trade-off of a (fractional) gain level: geometric interpolation of the
    neighbouring levels' λ, like the gains themselves."""
    low = min(int(math.floor(level)), len(lambdas) - 1)
    high = min(low + 1, len(lambdas) - 1)
    return _geometric_mix(lambdas[low], lambdas[high], level - low)


def latent_step_size(lmbda: float) -> float:
    """Initial Adam step size for ``y`` at the trade-off ``lmbda`` (see :data:`LATENT_STEP_SIZES`)."""
    (low_lmbda, low_step), (high_lmbda, high_step) = LATENT_STEP_SIZES
    frac = math.log(lmbda / low_lmbda) / math.log(high_lmbda / low_lmbda)
    return _geometric_mix(low_step, high_step, min(1.0, max(0.0, frac)))


def _geometric_mix(low: float, high: float, frac: float) -> float:
    """``low`` at ``frac`` 0, ``high`` at 1, geometric in between."""
    return math.exp((1 - frac) * math.log(low) + frac * math.log(high))


def soft_round(residual: torch.Tensor, temperature: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Stochastic Gumbel-annealed rounding: ``floor(r) + w`` with ``w`` a Gumbel-softmax draw between
    0 (floor) and 1 (ceiling), favouring the nearer one more sharply as ``temperature`` falls."""
    floor = torch.floor(residual)
    fraction = residual - floor
    bound = 1 - 1e-5
    logits = torch.stack([-torch.atanh(fraction.clamp(-bound, bound)),
                          -torch.atanh((1 - fraction).clamp(-bound, bound))], dim=-1) / temperature
    uniform = torch.rand(logits.shape, generator=generator, device=logits.device).clamp(1e-10, 1 - 1e-7)
    return floor + torch.softmax(logits - torch.log(-torch.log(uniform)), dim=-1)[..., 1]


def refine_latents(model: ImageHyperprior, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, level: float,
                   steps: int, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` Adam steps on the gained latent ``y`` and hyper-latent ``z`` of the image ``x``
    (1, 3, H, W) in [0, 1] (``y``/``z`` belong to ``x`` padded to the transforms' multiple); returns the
    refined ``(y, z)``, detached. The model's weights are not changed and receive no gradients.
    ``progress`` shows a progress bar (on stderr)."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    lmbda = lambda_at(model.config.lambdas, level)
    level_t = torch.tensor([level], device=y.device)
    y = y.detach().float().clone().requires_grad_(True)
    z = z.detach().float().clone().requires_grad_(True)
    step_sizes = (latent_step_size(lmbda), HYPER_LATENT_STEP_SIZE)
    optimizer = torch.optim.Adam([{"params": [y], "lr": step_sizes[0]}, {"params": [z], "lr": step_sizes[1]}])
    first, last = TEMPERATURES
    generator = torch.Generator(device=y.device).manual_seed(0)  # the same file for the same input
    with torch.enable_grad():
        for step in progress_bar(range(steps), show=progress, desc="refining latents", unit="step"):
            temperature = first * (last / first) ** (step / max(1, steps - 1))
            loss = rate_distortion_loss(model, x, y, z, level_t, lmbda, temperature, generator)
            y.grad, z.grad = torch.autograd.grad(loss, (y, z))
            for group, size in zip(optimizer.param_groups, step_sizes):
                group["lr"] = size * 0.5 * (1 + math.cos(math.pi * step / steps))
            optimizer.step()
    return y.detach(), z.detach()


def rate_distortion_loss(model: ImageHyperprior, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor,
                         level: torch.Tensor, lmbda: float, temperature: float,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """``bpp + λ·255²·MSE`` of coding ``(y, z)`` for the image ``x``, with ``y``'s rounding relaxed by
    :func:`soft_round` at ``temperature`` and ``z`` rounded with straight-through gradients. Latent
    positions beyond the picture are the means, as a cropped-latent file decodes them."""
    height, width = x.shape[-2:]
    medians = model.entropy_bottleneck.quantiles[:, 0, 1].detach().reshape(1, -1, 1, 1)
    z_hat = round_straight_through(z - medians) + medians
    means, scales = model.hyper_decode(z_hat, level)
    rows, columns = picture_extent(height, width)  # the latent a (cropped-latent) file codes
    y_hat = means.clone()
    y_hat[..., :rows, :columns] = (soft_round(y - means, temperature, generator) + means)[..., :rows, :columns]
    likelihoods = model.gaussian_conditional.likelihood(y_hat, scales, means)[..., :rows, :columns]
    bits = -(torch.log2(likelihoods).sum() + torch.log2(model.entropy_bottleneck.likelihood(z_hat)).sum())
    x_hat = model.g_s(model.latent_gain.unscale(y_hat, level))[..., :height, :width]
    return bits / (height * width) + lmbda * 255**2 * (x_hat - x).pow(2).mean()
