"""`codec train video-mc`: train the residual autoencoder of the motion-compensated video codec.

A P-frame of ``video-mc`` is its block-motion prediction from the previous decoded frame plus a coded
residual. The residual coder is an image hyperprior (the same architecture and gain levels as the
I-frame model) fine-tuned from it on prediction residuals. Samples are made once and cached: two
consecutive frames of a training clip (real clips and clips synthesized from photos); the first is
coded by the I-frame model at a random level, the second is predicted from that reconstruction by
:func:`~neuralcodec.codecs.video.motion.estimate_motion` / ``predict``, and the integer residual is
kept with its level. Training then minimizes ``bpp + λ_level · 255² · MSE(r̂, r)`` at each sample's
level: the P-frame's distortion is exactly the residual's, since the prediction is added back.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from neuralcodec.codecs.image.model import ImageHyperprior
from neuralcodec.codecs.video.data import real_clips, synthetic_clips
from neuralcodec.codecs.video.motion import estimate_motion, predict
from neuralcodec.codecs.video.training import SYNTHETIC_VERSION, cached_tensors, frozen_image_model
from neuralcodec.errors import InputError
from neuralcodec.train.loop import TrainConfig, fit
from neuralcodec.train.losses import bits_per_pixel, per_sample_mse, psnr_from_mse

RESIDUAL_VERSION = 1
"""Bumped whenever how residual samples are made changes, so older caches are not reused."""


@torch.no_grad()
def residual_samples(image: ImageHyperprior, clips: Iterable[np.ndarray], seed: int,
                     batch: int = 16) -> Iterator[tuple[np.ndarray, int]]:
    """(residual (3, H, W) int16, level) of each two-frame clip (see the module docstring)."""
    rng = np.random.default_rng(seed)
    image = image.eval()
    pending: list[np.ndarray] = []

    def flush() -> Iterator[tuple[np.ndarray, int]]:
        levels = rng.integers(image.config.levels, size=len(pending))
        first = torch.from_numpy(np.stack([c[0] for c in pending])).permute(0, 3, 1, 2).float() / 255
        decoded = image(first, torch.from_numpy(levels).float())["x_hat"].clamp(0, 1)
        decoded = (decoded * 255).round().byte().permute(0, 2, 3, 1).numpy()
        for clip, reference, level in zip(pending, decoded, levels):
            prediction = predict(reference, estimate_motion(reference, clip[1]))
            residual = clip[1].astype(np.int16) - prediction.astype(np.int16)
            yield residual.transpose(2, 0, 1).copy(), int(level)
        pending.clear()

    for clip in clips:
        pending.append(clip)
        if len(pending) == batch:
            yield from flush()
    if pending:
        yield from flush()


def _stack(samples: Iterable[tuple[np.ndarray, int]], description: str) -> torch.Tensor:
    """(N, 4, H, W) int16: the residual's three planes and its level as a constant fourth plane."""
    rows = [np.concatenate([r, np.full((1,) + r.shape[1:], level, dtype=np.int16)])
            for r, level in tqdm(samples, desc=description, unit="pair", leave=False)]
    if not rows:
        raise InputError("no training pairs: the data has no clip long and large enough")
    return torch.from_numpy(np.stack(rows))


class ResidualRateDistortionTask:
    """``bpp + λ·255²·MSE`` of residuals at their own levels (batches of :func:`_stack` rows)."""

    def __init__(self, lambdas: tuple[float, ...]) -> None:
        self.lambdas = torch.tensor(lambdas, dtype=torch.float32)

    def _losses(self, model: nn.Module, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        residual, level = rows[:, :3].float() / 255, rows[:, 3, 0, 0].long()
        output = model(residual, level.float())
        bpp = bits_per_pixel(output["likelihoods"], residual.shape[-2] * residual.shape[-1])
        mse = per_sample_mse(output["x_hat"].float(), residual)
        loss = bpp + self.lambdas.to(rows.device)[level] * 255**2 * mse
        return {"loss": loss, "bpp": bpp, "psnr": psnr_from_mse(mse), "level": level}

    def training_step(self, model: nn.Module, batch: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        losses = self._losses(model, batch[0])
        return {key: losses[key].float().mean() for key in ("loss", "bpp", "psnr")}

    def validate(self, model: nn.Module, loader: DataLoader) -> dict[str, float]:
        """Mean bpp and PSNR (of the frame: the residual's) per level, noise-free quantization."""
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for (rows,) in loader:
            losses = self._losses(model, rows)
            for i, level in enumerate(losses["level"].tolist()):
                for key in ("bpp", "psnr"):
                    name = f"L{level}_{key}"
                    sums[name] = sums.get(name, 0.0) + float(losses[key][i])
                    counts[name] = counts.get(name, 0) + 1
        return {key: value / counts[key] for key, value in sorted(sums.items())}


def train_residual_coder(config: TrainConfig, init_from: str | Path, clips_root: str | Path | None = None,
                         photos_root: str | Path | None = None, synthetic_count: int = 4000, crop: int = 128,
                         crops_per_window: int = 8, val_fraction: float = 0.05) -> ImageHyperprior:
    """Train (or resume) the residual coder, fine-tuned from the image model ``init_from``, on residual
    samples of real clips under ``clips_root`` and/or clips synthesized from ``photos_root``."""
    if clips_root is None and photos_root is None:
        raise InputError("give real clips (--data) and/or photos to synthesize clips from (--synthetic-from)")
    if crop % 64:
        raise InputError(f"--crop must be a multiple of 64, got {crop}")
    reference_model = frozen_image_model(init_from)
    out_dir = Path(config.out_dir)
    common = {"image": reference_model.config.to_dict(), "weights": str(init_from), "crop": crop,
              "seed": config.seed, "residuals": RESIDUAL_VERSION}
    parts = []
    if clips_root is not None:
        parts.append(cached_tensors(
            out_dir / "residuals-real.pt", {**common, "root": str(clips_root), "crops": crops_per_window},
            lambda: _stack(residual_samples(reference_model, real_clips(clips_root, 2, crop, crops_per_window,
                                                                       config.seed), config.seed), "real pairs")))
    if photos_root is not None and synthetic_count > 0:
        parts.append(cached_tensors(
            out_dir / "residuals-synthetic.pt",
            {**common, "root": str(photos_root), "count": synthetic_count, "generator": SYNTHETIC_VERSION},
            lambda: _stack(residual_samples(reference_model, synthetic_clips(photos_root, synthetic_count, 2, crop,
                                                                            config.seed), config.seed + 1),
                           "synthetic pairs")))
    rows = torch.cat(parts)
    order = torch.from_numpy(np.random.default_rng(config.seed).permutation(len(rows)))
    held_out = int(round(len(rows) * val_fraction))
    model = copy.deepcopy(reference_model)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    train_set = TensorDataset(rows[order[held_out:]])
    val_set = TensorDataset(rows[order[:held_out]]) if held_out else None
    return fit(model.train(), ResidualRateDistortionTask(model.config.lambdas), train_set, val_set, config)
