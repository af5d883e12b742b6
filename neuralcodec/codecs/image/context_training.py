"""`codec train image-context`: train the spatial-channel context model of a frozen image hyperprior.

The hyperprior (``--init-from``) keeps its transforms, hyper-latent and coding tables; only the context
model's parameter networks train. Its training crops' latents are therefore cached once (see
:mod:`neuralcodec.codecs.image.latent_cache`) and training runs at latent resolution. Every sample gets
a random gain level; the loss is the latent's rate under the context model *relative to* the
hyperprior's rate of the same latent, so each level's relative saving (what BD-rate measures) counts
alike. Validation reports, per level, the total rate (hyper-latent included) of held-out crops under
both models, noise-free.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from neuralcodec.codecs.common.inference import inference_form
from neuralcodec.codecs.common.transforms import ANALYSIS_STRIDE
from neuralcodec.codecs.image.codec import model_from_weights
from neuralcodec.codecs.image.context import ContextConfig, ImageContextConfig, ImageContextModel
from neuralcodec.codecs.image.latent_cache import cached_latents
from neuralcodec.codecs.image.model import ImageHyperprior
from neuralcodec.errors import InputError
from neuralcodec.media.images import list_images
from neuralcodec.pretrained import load_named_weights
from neuralcodec.train.datasets import split_files
from neuralcodec.train.loop import TrainConfig, fit

CONFIG_NAME = "context_config.json"
"""The run folder's context architecture (a resumed run keeps it, channel order included)."""


def _bits(likelihoods: torch.Tensor) -> torch.Tensor:
    """Σ −log2 p per sample."""
    return -torch.log2(likelihoods).flatten(1).sum(dim=1)


class ContextRateTask:
    """Rate of cached latents under the context model, at a random gain level per sample."""

    def __init__(self, levels: int) -> None:
        self.levels = levels
        self._hyper_synthesis: nn.Module | None = None

    def _rates(self, model: ImageContextModel, u: torch.Tensor, symbols: torch.Tensor,
               level: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample bits of the latent under the context model and the hyperprior, and of the hyper-latent."""
        image = model.image
        if self._hyper_synthesis is None:  # frozen: its faster inference form (codecs.common.inference)
            self._hyper_synthesis = inference_form(image.h_s)
        picked = symbols[torch.arange(len(level), device=level.device), level.long()].float()
        z_hat = picked + image.entropy_bottleneck._medians_like(4).to(u.device)
        gain = model.latent_gain(level)
        y = gain * u.float()
        with torch.no_grad():
            means, scales = image.entropy_parameters(self._hyper_synthesis(image.hyper_gain.unscale(z_hat, level)))
            base = image.gaussian_conditional(y, scales, means=means, training=False)[1]
            z_bits = _bits(image.entropy_bottleneck.likelihood(z_hat))
        likelihoods, _ = model.context(y, means, scales, gain, image.gaussian_conditional)
        return {"bits": _bits(likelihoods), "base_bits": _bits(base), "z_bits": z_bits}

    def training_step(self, model: nn.Module, batch: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        module = model.module if hasattr(model, "module") else model
        u, symbols = batch
        level = torch.randint(self.levels, (u.shape[0],), device=u.device).float()
        rates = self._rates(module, u, symbols, level)
        ratio = rates["bits"] / rates["base_bits"].clamp_min(1.0)
        return {"loss": ratio.mean(), "rate_ratio": ratio.mean()}

    def validate(self, model: nn.Module, loader: DataLoader) -> dict[str, float]:
        """Per level: bpp (hyper-latent included) under the context model and the hyperprior, and the
        saving in percent; and the mean saving over levels."""
        sums: dict[str, float] = {}
        for u, symbols in loader:
            pixels = u.shape[-2] * u.shape[-1] * ANALYSIS_STRIDE**2
            for level in range(self.levels):
                rates = self._rates(model, u, symbols, torch.full((u.shape[0],), float(level), device=u.device))
                for name, key in (("bpp", "bits"), ("base_bpp", "base_bits")):
                    total = float((rates[key] + rates["z_bits"]).sum()) / pixels
                    sums[f"L{level}_{name}"] = sums.get(f"L{level}_{name}", 0.0) + total
        count = len(loader.dataset)
        metrics = {key: value / count for key, value in sums.items()}
        savings = [100 * (1 - metrics[f"L{level}_bpp"] / metrics[f"L{level}_base_bpp"]) for level in range(self.levels)]
        for level, saving in enumerate(savings):
            metrics[f"L{level}_saving_percent"] = saving
        metrics["mean_saving_percent"] = sum(savings) / len(savings)
        return metrics


def _context_weights(name: str, image: ImageHyperprior) -> ImageContextModel:
    """The context model stored under ``name``, checked to be built on ``image``."""
    model = model_from_weights(load_named_weights(name, "image-hyperprior"))
    if not isinstance(model, ImageContextModel):
        raise InputError(f"{name} is not a context model")
    if model.config.image != image.config or any(
            not torch.equal(a, b) for a, b in zip(model.image.state_dict().values(), image.state_dict().values())):
        raise InputError(f"{name} was trained on another hyperprior than --init-from")
    return model


def channel_order(model: ImageHyperprior, u: torch.Tensor, symbols: torch.Tensor) -> list[int]:
    """Latent channels by decreasing rate under the hyperprior (summed over levels): the most informative
    channels are coded first, in the small groups, and become context for the rest."""
    bits = torch.zeros(model.config.m, dtype=torch.float64)
    with torch.no_grad():
        for level in range(model.config.levels):
            level_t = torch.full((u.shape[0],), float(level))
            z_hat = symbols[:, level].float() + model.entropy_bottleneck._medians_like(4)
            y = model.latent_gain.scale(u.float(), level_t)
            means, scales = model.hyper_decode(z_hat, level_t)
            likelihoods = model.gaussian_conditional(y, scales, means=means, training=False)[1]
            bits += -torch.log2(likelihoods).double().sum(dim=(0, 2, 3))
    return torch.argsort(bits, descending=True).tolist()


def train_image_context(data: str | Path, config: TrainConfig, init_from: str, context: ContextConfig,
                        crops: int = 4000, val_crops: int = 64, crop: int = 256,
                        val_fraction: float = 0.05, order_channels: bool = True,
                        cache_dir: Path | None = None, context_from: str | None = None) -> ImageContextModel:
    """Train (or resume) the context model of the frozen hyperprior ``init_from`` on latents of random
    crops of the images under ``data`` (a deterministic ``val_fraction`` of the files held out; their
    crops validate). Latents are cached under ``cache_dir`` (default ``OUT/latents``; runs on the same
    hyperprior, data and crops can share one). ``order_channels`` codes the channels by decreasing
    hyperprior rate (unless ``context`` gives an order). ``context_from`` (a context model's id or weights
    file, on the same hyperprior) starts from its context model, architecture and channel order included;
    a checkpoint in the run folder wins."""
    weights = load_named_weights(init_from, "image-hyperprior")
    image = model_from_weights(weights)
    if not isinstance(image, ImageHyperprior) or not image.config.mean_scale:
        raise InputError(f"{init_from} is not a mean-scale hyperprior; the context model needs one")
    if sum(context.groups) != image.config.m:
        raise InputError(f"the groups {context.groups} sum to {sum(context.groups)}, not to the {image.config.m} "
                         f"latent channels of {init_from}")
    image.requires_grad_(False)
    train_files, val_files = split_files(list_images(data), val_fraction)
    if not val_files:
        raise InputError("the context model validates on held-out images: give at least 2 images and --val-fraction > 0")
    out_dir = Path(config.out_dir)
    folder = out_dir / "latents" if cache_dir is None else Path(cache_dir)
    key = {"weights": weights.weights_hash.hex()}
    train_set = cached_latents(image, train_files, folder / "train", key, crops, crop, config.seed)
    val_set = cached_latents(image, val_files, folder / "val", key, val_crops, crop, config.seed + 1)
    start = _context_weights(context_from, image) if context_from is not None else None
    if start is not None:
        context = start.config.context
    config_path = out_dir / CONFIG_NAME
    if config_path.is_file():
        context = ContextConfig.from_dict(json.loads(config_path.read_text()))
    else:
        if order_channels and not context.channel_order:
            u, symbols = train_set.tensors
            order = channel_order(image, u[:512], symbols[:512])
            context = replace(context, channel_order=tuple(order))
        out_dir.mkdir(parents=True, exist_ok=True)
        config_path.write_text(json.dumps(context.to_dict(), indent=1))
    model = ImageContextModel(ImageContextConfig(image.config, context), image)
    if start is not None and model.config == start.config:
        model.context.load_state_dict(start.context.state_dict())
    return fit(model, ContextRateTask(image.config.levels), train_set, val_set, config)
