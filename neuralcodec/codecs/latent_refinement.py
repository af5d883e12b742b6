"""Encoder-side latent refinement: optimize the latents of one image for its own rate-distortion cost.

The analysis transform predicts latents that are good on average over the training set; for a given
image, a few gradient steps on the latent ``y`` and the hyper-latent ``z`` themselves (with the
decoder's weights frozen) lower ``bits + λ·255²·MSE`` further (Campos et al., "Content Adaptive
Optimization for Neural Image Compression", CVPR-W 2019; Yang et al., "Improving Inference for Neural
Image Compression", NeurIPS 2020). Only the encoder changes: the refined latents are coded exactly as
usual, so any decoder reads the files and reproduces the encoder's reconstruction bit for bit.

Quantization is bridged with straight-through rounding (the rounded values go forward, gradients pass
unchanged), for both the distortion and the rate; Adam with a cosine-decayed step size. The loss is
evaluated at the rounded latents, so it is the coded cost up to table quantization: the iterate with
the lowest loss is returned (the starting point included), not merely the last one.
"""

from __future__ import annotations

import math

import torch
from tqdm import tqdm

from neuralcodec.codecs.image_hyperprior import ImageHyperprior, round_straight_through

DEFAULT_STEP_SIZE = 0.01
"""Adam step size at the start of the schedule, in quantization bins (latents are coded with bin 1)."""


def lambda_at(lambdas: tuple[float, ...], level: float) -> float:
    """The rate-distortion trade-off of a (fractional) gain level: geometric interpolation of the
    neighbouring levels' λ, like the gains themselves."""
    low = min(int(math.floor(level)), len(lambdas) - 1)
    high = min(low + 1, len(lambdas) - 1)
    frac = level - low
    return math.exp((1 - frac) * math.log(lambdas[low]) + frac * math.log(lambdas[high]))


def refine_latents(model: ImageHyperprior, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, level: float,
                   steps: int, step_size: float = DEFAULT_STEP_SIZE,
                   progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` Adam steps on the gained latent ``y`` and hyper-latent ``z`` of the image ``x``
    (1, 3, H, W) in [0, 1] (``y``/``z`` belong to ``x`` padded to the transforms' multiple); returns the
    ``(y, z)`` of lowest loss, detached. The model's weights are not changed and receive no gradients.
    ``progress`` shows a progress bar (on stderr)."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    lmbda = lambda_at(model.config.lambdas, level)
    level_t = torch.tensor([level], device=y.device)
    y = y.detach().float().clone().requires_grad_(True)
    z = z.detach().float().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([y, z], lr=step_size)
    best_loss, best = math.inf, (y.detach().clone(), z.detach().clone())
    with torch.enable_grad():
        for step in tqdm(range(steps + 1), desc="refining latents", unit="step", disable=not progress, leave=False):
            loss = rate_distortion_loss(model, x, y, z, level_t, lmbda)
            if loss.item() < best_loss:
                best_loss, best = loss.item(), (y.detach().clone(), z.detach().clone())
            if step == steps:
                break
            y.grad, z.grad = torch.autograd.grad(loss, (y, z))
            for group in optimizer.param_groups:
                group["lr"] = step_size * 0.5 * (1 + math.cos(math.pi * step / steps))
            optimizer.step()
    return best


def rate_distortion_loss(model: ImageHyperprior, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor,
                         level: torch.Tensor, lmbda: float) -> torch.Tensor:
    """``bpp + λ·255²·MSE`` of coding ``(y, z)`` for the image ``x``, at the rounded latents the coder
    would send (straight-through gradients)."""
    height, width = x.shape[-2:]
    medians = model.entropy_bottleneck.quantiles[:, 0, 1].detach().reshape(1, -1, 1, 1)
    z_hat = round_straight_through(z - medians) + medians
    means, scales = model.hyper_decode(z_hat, level)
    y_hat = round_straight_through(y - means) + means
    bits = -(torch.log2(model.gaussian_conditional.likelihood(y_hat, scales, means)).sum()
             + torch.log2(model.entropy_bottleneck.likelihood(z_hat)).sum())
    x_hat = model.g_s(model.latent_gain.unscale(y_hat, level))[..., :height, :width]
    return bits / (height * width) + lmbda * 255**2 * (x_hat - x).pow(2).mean()
