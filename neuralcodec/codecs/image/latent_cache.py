"""Latents of training crops under a frozen image hyperprior, computed once and kept on disk.

With the transforms frozen, a crop's gain-free latent ``u = g_a(x)`` never changes; the latent at gain
level ``l`` is ``g_l · u`` and its hyper-latent ``ẑ_l`` is ``round(h_a(g_l · u) - median) + median``.
The cache keeps ``u`` (fp16) and the integer hyper-latent symbols of every level (int16), so a context
model trains at latent resolution (1/16 of the crop's sides) without running a transform.

Crops are drawn like the hyperprior's training crops (random position and flips; large photos also at
half size) and written in shards of ``shard_size`` crops, each drawn from its own seed: an interrupted
cache resumes at the first missing shard, and a shard written for other settings is recomputed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset
from tqdm import tqdm

from neuralcodec.codecs.image.model import ImageHyperprior
from neuralcodec.fileio import atomic_output
from neuralcodec.train.datasets import RandomCropDataset


@torch.no_grad()
def latents_of_crops(image: ImageHyperprior, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(fp16 gain-free latents (B, M, h, w), int16 hyper-latent symbols (B, levels, N, h/4, w/4)) of
    (B, 3, H, W) crops in [0, 1]."""
    u = image.g_a(crops)
    medians = image.entropy_bottleneck._medians_like(4).to(u.device)
    symbols = []
    for level in range(image.config.levels):
        level_t = torch.full((u.shape[0],), float(level), device=u.device)
        z = image.hyper_gain.scale(image.h_a(image.latent_gain.scale(u, level_t)), level_t)
        symbols.append(torch.round(z - medians).to(torch.int16))
    return u.half(), torch.stack(symbols, dim=1)


def cached_latents(image: ImageHyperprior, files: list[Path], folder: Path, key: dict, count: int, crop: int,
                   seed: int, shard_size: int = 250, batch: int = 8) -> TensorDataset:
    """A dataset of (u, hyper-latent symbols) for ``count`` random crops of ``files``, read from the shards
    under ``folder`` that were written for the same ``key`` (model, files, crop...), the others computed."""
    folder.mkdir(parents=True, exist_ok=True)
    tag = json.dumps({**key, "files": [str(f) for f in files], "crop": crop, "seed": seed, "shard": shard_size},
                     sort_keys=True)
    image = image.eval()
    crops = None
    parts = []
    shards = -(-count // shard_size)
    for shard in tqdm(range(shards), desc=f"latents ({folder.name})", unit="shard", leave=False):
        path = folder / f"shard-{shard:04d}.pt"
        size = min(shard_size, count - shard * shard_size)
        saved = torch.load(path, weights_only=True) if path.is_file() else None
        if saved is None or saved["key"] != tag or len(saved["u"]) != size:
            if crops is None:
                crops = RandomCropDataset(files, crop=crop, samples_per_epoch=count)
            crops.rng = np.random.default_rng([seed, shard])
            pieces = [latents_of_crops(image, torch.stack([crops[0] for _ in range(min(batch, size - start))]))
                      for start in range(0, size, batch)]
            saved = {"key": tag, "u": torch.cat([p[0] for p in pieces]), "z": torch.cat([p[1] for p in pieces])}
            with atomic_output(path) as temporary:
                torch.save(saved, temporary)
        parts.append(saved)
    return TensorDataset(torch.cat([p["u"] for p in parts]), torch.cat([p["z"] for p in parts]))
