"""Training task of the variable-rate image codec: every sample of a batch gets a random gain level
and is trained with that level's λ, so one run trains all rate points. Batches whose sides are not
multiples of 64 (whole images) are padded by edge replication, as the codec does, and only the real
pixels count in the loss (the rate is all the bits, per real pixel)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from neuralcodec.codecs.image.model import pad_to_multiple
from neuralcodec.train.losses import RateDistortionLoss


class ImageRateDistortionTask:
    """Rate-distortion training of a model with ``forward(x, level)`` and ``config.lambdas``."""

    def __init__(self, lambdas: tuple[float, ...], loss: RateDistortionLoss | None = None) -> None:
        self.lambdas = torch.tensor(lambdas, dtype=torch.float32)
        self.loss = loss or RateDistortionLoss()

    @staticmethod
    def _forward(model: nn.Module, batch: torch.Tensor, level: torch.Tensor | float) -> dict:
        output = model(pad_to_multiple(batch), level)
        height, width = batch.shape[-2:]
        return {**output, "x_hat": output["x_hat"][..., :height, :width]}

    def training_step(self, model: nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        levels = torch.randint(len(self.lambdas), (batch.shape[0],))
        output = self._forward(model, batch, levels.to(batch.device))
        return self.loss(output, batch, self.lambdas[levels].to(batch.device))

    def validate(self, model: nn.Module, loader: DataLoader) -> dict[str, float]:
        """Mean bpp and PSNR at every level (noise-free quantization: the rates the file pays)."""
        device = next(model.parameters()).device
        totals: dict[str, float] = {}
        count = 0
        for batch in loader:
            batch = batch.to(device)
            count += 1
            for level, lmbda in enumerate(self.lambdas.tolist()):
                out = self.loss(self._forward(model, batch, float(level)), batch, torch.tensor(lmbda, device=device))
                for key in ("bpp", "psnr", "task_distance"):
                    if key not in out:
                        continue
                    name = f"L{level}_{key}"
                    totals[name] = totals.get(name, 0.0) + float(out[key])
        return {key: value / max(count, 1) for key, value in totals.items()}
