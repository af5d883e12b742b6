"""Training losses: rate-distortion (MSE or MS-SSIM distortion, optionally plus a task-aware term) with a
per-sample trade-off λ."""

from __future__ import annotations

import math

import torch
from pytorch_msssim import ms_ssim

from neuralcodec.train.task_loss import TaskDistortion


def bits_per_pixel(likelihoods: dict[str, torch.Tensor], num_pixels: int) -> torch.Tensor:
    """Per-sample rate (B,) in bits per pixel: Σ −log2 p over every latent of a sample."""
    total = sum(
        torch.log(lik.clamp_min(1e-9)).flatten(1).sum(dim=1) for lik in likelihoods.values()
    )
    return total / (-math.log(2) * num_pixels)


def per_sample_mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (x_hat - x).pow(2).flatten(1).mean(dim=1)


def psnr_from_mse(mse: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    return 10 * torch.log10(peak**2 / mse.clamp_min(1e-12))


class RateDistortionLoss:
    """L = bpp + λ·(D + α·D_task) per sample, averaged over the batch.

    ``metric="mse"``: D = 255²·MSE (the convention of CompressAI's λ values);
    ``metric="ms-ssim"``: D = 1 − MS-SSIM (use λ roughly 100-3000x larger than for MSE).
    ``task_distortion`` (optional): a :class:`TaskDistortion` (1 − cosine between a frozen network's
    features on x and x̂), weighted by ``task_weight`` = α in units of D.
    """

    def __init__(self, metric: str = "mse", task_distortion: TaskDistortion | None = None,
                 task_weight: float = 0.0) -> None:
        if metric not in ("mse", "ms-ssim"):
            raise ValueError(f"unknown distortion metric {metric!r} (use 'mse' or 'ms-ssim')")
        self.metric = metric
        self.task_distortion = task_distortion
        self.task_weight = task_weight

    def __call__(self, output: dict, x: torch.Tensor, lmbda: torch.Tensor) -> dict[str, torch.Tensor]:
        x_hat = output["x_hat"].float()
        num_pixels = x.shape[-2] * x.shape[-1]
        bpp = bits_per_pixel(output["likelihoods"], num_pixels)
        mse = per_sample_mse(x_hat.clamp(0, 1), x)
        if self.metric == "mse":
            distortion = 255**2 * per_sample_mse(x_hat, x)
        else:
            distortion = 1 - ms_ssim(x_hat, x, data_range=1.0, size_average=False)
        metrics = {"bpp": bpp.mean(), "mse": mse.mean(), "psnr": psnr_from_mse(mse).mean()}
        if self.task_distortion is not None:
            task_distance = self.task_distortion(x_hat.clamp(0, 1), x)
            distortion = distortion + self.task_weight * task_distance
            metrics["task_distance"] = task_distance.mean()
        return {"loss": (bpp + lmbda * distortion).mean(), **metrics}
