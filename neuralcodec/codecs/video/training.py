"""`codec train video-st`: train the spatiotemporal entropy model of the video codec.

The frame autoencoder is a trained image hyperprior (``--init-from``), kept frozen: every frame's
latent is then fixed, so the clips' gain-free latents ``g_a(x)`` are computed once and cached, and
training runs at latent resolution (1/16 of the frames' sides) — minutes on a CPU. Each sample is a
clip of ``length`` frames at a random gain level: the first is decoded as an I-frame (image model),
every later one is coded with the spatiotemporal prior conditioned on its predecessor's decoded
latent, so the loss (mean P-frame bpp) sees how conditioning errors carry through a clip.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm import tqdm

from neuralcodec.codecs.common.transforms import ANALYSIS_STRIDE
from neuralcodec.codecs.image.codec import model_from_weights
from neuralcodec.codecs.image.model import ImageHyperprior
from neuralcodec.codecs.video.data import real_clips, synthetic_clips
from neuralcodec.codecs.video.model import SpatiotemporalVideoModel, VideoConfig
from neuralcodec.errors import InputError
from neuralcodec.fileio import atomic_output
from neuralcodec.pretrained import load_named_weights
from neuralcodec.train.loop import TrainConfig, fit
from neuralcodec.train.losses import bits_per_pixel


@torch.no_grad()
def cache_latents(image_model: ImageHyperprior, clips: Iterable[np.ndarray], device: str = "cpu",
                  description: str = "latents") -> torch.Tensor:
    """(N, T, M, h, w) fp16 gain-free latents ``g_a(x)`` of (T, H, W, 3) uint8 clips."""
    image_model = image_model.to(device).eval()
    latents = []
    for clip in tqdm(clips, desc=description, unit="clip", leave=False):
        x = torch.from_numpy(clip).permute(0, 3, 1, 2).float().div_(255.0).to(device)
        latents.append(image_model.g_a(x).half().cpu())
    if not latents:
        raise InputError("no training clips: the data has no clip long and large enough")
    return torch.stack(latents)


class VideoRateTask:
    """Mean P-frame rate (bits per pixel) over clips of cached gain-free latents, random level per clip."""

    def __init__(self, levels: int) -> None:
        self.levels = levels

    @staticmethod
    def _clip_rates(model: SpatiotemporalVideoModel, latents: torch.Tensor, level: torch.Tensor) -> dict[str, torch.Tensor]:
        gain = model.latent_gain(level)
        frames = latents.float().unbind(dim=1)
        pixels = frames[0].shape[-2] * frames[0].shape[-1] * ANALYSIS_STRIDE**2
        with torch.no_grad():
            previous = model.intra_latent_hat(gain * frames[0], level)
        rates = []
        for u in frames[1:]:
            out = model.prior(gain * u, previous, gain, level)
            rates.append(bits_per_pixel(out["likelihoods"], pixels))
            previous = out["y_hat"]
        return {"p_bpp": torch.stack(rates).mean(dim=0)}

    def training_step(self, model: nn.Module, batch: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        module = model.module if hasattr(model, "module") else model
        latents = batch[0]
        level = torch.randint(self.levels, (latents.shape[0],), device=latents.device).float()
        rates = self._clip_rates(module, latents, level)
        return {"loss": rates["p_bpp"].mean(), "bpp": rates["p_bpp"].mean()}

    def validate(self, model: nn.Module, loader: DataLoader) -> dict[str, float]:
        """Per level: P-frame bpp, and the bpp the image model pays for the same latents (intra)."""
        totals: dict[str, float] = {}
        count = 0
        for (latents,) in loader:
            count += 1
            for level in range(self.levels):
                level_t = torch.full((latents.shape[0],), float(level), device=latents.device)
                p_bpp = float(self._clip_rates(model, latents, level_t)["p_bpp"].mean())
                intra = _intra_bpp(model.image, latents[:, 1:].flatten(0, 1).float(), level)
                for key, value in ((f"L{level}_p_bpp", p_bpp), (f"L{level}_intra_bpp", intra)):
                    totals[key] = totals.get(key, 0.0) + value
        return {key: value / max(count, 1) for key, value in totals.items()}


def _intra_bpp(image: ImageHyperprior, u: torch.Tensor, level: int) -> float:
    """Rate of gain-free latents ``u`` coded as I-frames by ``image`` at ``level`` (eval-mode likelihoods)."""
    level_t = torch.full((u.shape[0],), float(level), device=u.device)
    y = image.latent_gain.scale(u, level_t)
    z = image.hyper_gain.scale(image.h_a(y), level_t)
    z_hat, z_likelihoods = image.entropy_bottleneck(z)
    means, scales = image.hyper_decode(z_hat, level_t)
    _, y_likelihoods = image.gaussian_conditional(y, scales, means=means)
    pixels = u.shape[-2] * u.shape[-1] * ANALYSIS_STRIDE**2
    return float(bits_per_pixel({"y": y_likelihoods, "z": z_likelihoods}, pixels).mean())


SYNTHETIC_VERSION = 2
"""Bumped whenever :func:`synthetic_clips` changes, so cached latents of older clips are not reused."""


def cached_tensors(path: Path, key: dict, make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Tensors (latents, residuals) saved at ``path`` for the same ``key`` (sources and settings), else ``make()`` saved there
    (so a resumed run, or a run given a copy of the file, skips the slow pass through the analysis transform)."""
    tag = json.dumps(key, sort_keys=True)
    if path.is_file():
        saved = torch.load(path, weights_only=True)
        if saved.get("key") == tag:
            return saved["latents"]
    latents = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as temporary:
        torch.save({"key": tag, "latents": latents}, temporary)
    return latents


def frozen_image_model(init_from: str | Path) -> ImageHyperprior:
    """The trained image hyperprior whose transforms the video codec uses, with every parameter frozen."""
    image = model_from_weights(load_named_weights(str(init_from), "image-hyperprior"))
    for parameter in image.parameters():
        parameter.requires_grad_(False)
    return image.eval()


def train_video(
    config: TrainConfig,
    init_from: str | Path,
    clips_root: str | Path | None = None,
    photos_root: str | Path | None = None,
    synthetic_count: int = 1500,
    length: int = 3,
    crop: int = 256,
    crops_per_window: int = 4,
    hidden: int = 128,
    temporal: bool = True,
    spatial: bool = True,
    val_fraction: float = 0.05,
) -> SpatiotemporalVideoModel:
    """Train (or resume) a :class:`SpatiotemporalVideoModel` on real clips under ``clips_root`` and/or
    ``synthetic_count`` clips synthesized from the photos under ``photos_root``."""
    if clips_root is None and photos_root is None:
        raise InputError("give real clips (--data) and/or photos to synthesize clips from (--synthetic-from)")
    if length < 2:
        raise InputError(f"training clips need at least 2 frames, got {length}")
    image = frozen_image_model(init_from)
    model = SpatiotemporalVideoModel(VideoConfig(image.config, hidden, temporal, spatial), image)
    out_dir = Path(config.out_dir)
    common = {"image": image.config.to_dict(), "weights": str(init_from), "length": length, "crop": crop,
              "seed": config.seed}
    parts = []
    if clips_root is not None:
        parts.append(cached_tensors(out_dir / "latents-real.pt", {**common, "root": str(clips_root), "crops": crops_per_window},
                             lambda: cache_latents(image, real_clips(clips_root, length, crop, crops_per_window,
                                                                     config.seed), config.device, "real clips")))
    if photos_root is not None and synthetic_count > 0:
        parts.append(cached_tensors(out_dir / "latents-synthetic.pt", {**common, "root": str(photos_root), "count": synthetic_count,
                                                                    "generator": SYNTHETIC_VERSION},
                             lambda: cache_latents(image, synthetic_clips(photos_root, synthetic_count, length, crop,
                                                                          config.seed), config.device, "synthetic clips")))
    latents = torch.cat(parts)
    order = torch.from_numpy(np.random.default_rng(config.seed).permutation(len(latents)))
    held_out = int(round(len(latents) * val_fraction))
    train_set: Dataset = TensorDataset(latents[order[held_out:]])
    val_set = TensorDataset(latents[order[:held_out]]) if held_out else None
    return fit(model, VideoRateTask(image.config.levels), train_set, val_set, config)
