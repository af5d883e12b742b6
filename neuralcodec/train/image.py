"""`codec train image-hyperprior`: train the variable-rate hyperprior on a folder of images."""

from __future__ import annotations

import json
from pathlib import Path

from neuralcodec.codecs.image_codec import ImageHyperpriorCodec, model_from_weights
from neuralcodec.codecs.image_hyperprior import HyperpriorConfig, ImageHyperprior
from neuralcodec.codecs.registry import resolve_weights
from neuralcodec.errors import InputError
from neuralcodec.train.datasets import CenterCropDataset, RandomCropDataset, list_images, split_files
from neuralcodec.train.image_task import ImageRateDistortionTask
from neuralcodec.train.loop import TrainConfig, fit


def train_image_hyperprior(
    data: str | Path,
    config: TrainConfig,
    model_config: HyperpriorConfig = HyperpriorConfig(),
    metric: str = "mse",
    crop: int = 256,
    val_fraction: float = 0.05,
    init_from: str | Path | None = None,
) -> ImageHyperprior:
    """Train (or resume) an :class:`ImageHyperprior` on random crops of the images under ``data``.

    A deterministic ``val_fraction`` of the files is held out for validation. Checkpoints and the
    JSONL log go to ``config.out_dir``. ``init_from`` (a shipped model id or a .safetensors path)
    starts from existing weights, e.g. to fine-tune a domain codec; a checkpoint in ``out_dir`` wins.
    """
    train_files, val_files = split_files(list_images(data), val_fraction)
    train_set = RandomCropDataset(
        train_files, crop=crop, samples_per_epoch=max(1000, config.batch_size * 100), seed=config.seed
    )
    val_set = CenterCropDataset(val_files, crop=256) if val_files else None
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model_config.json").write_text(json.dumps(model_config.to_dict(), indent=2))
    if init_from is not None:
        model = model_from_weights(resolve_weights(str(init_from), ImageHyperpriorCodec.name))
        if model.config != model_config:
            raise InputError(f"{init_from} has architecture {model.config}, not the requested {model_config}")
    else:
        model = ImageHyperprior(model_config)
    task = ImageRateDistortionTask(model_config.lambdas, metric)
    return fit(model, task, train_set, val_set, config)
