"""`codec train image-hyperprior`: train the variable-rate hyperprior on a folder of images."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from neuralcodec.codecs.image.codec import ImageHyperpriorCodec, model_from_weights
from neuralcodec.codecs.image.context import ImageContextModel
from neuralcodec.codecs.image.model import HyperpriorConfig, ImageHyperprior
from neuralcodec.codecs.image.rd_task import ImageRateDistortionTask
from neuralcodec.errors import InputError
from neuralcodec.media.images import list_images
from neuralcodec.pretrained import load_named_weights
from neuralcodec.train.datasets import (
    CenterCropDataset,
    RandomCropDataset,
    WholeImageDataset,
    split_files,
)
from neuralcodec.train.loop import TrainConfig, fit
from neuralcodec.train.losses import RateDistortionLoss
from neuralcodec.train.task_loss import TaskDistortion, rgb_to_gray


def perception_task_distortion(model: str, layers: Sequence[str] = ()) -> TaskDistortion:
    """The task-aware distortion of a shipped (or trained) grey perception model: its output (and the
    outputs of the submodules named in ``layers``) on the channel mean of the codec's RGB images (grey
    inputs are coded as three equal channels)."""
    from neuralcodec.perception.weights import load_perception_model

    network = load_perception_model(model)
    try:
        return TaskDistortion(network, to_input=rgb_to_gray, layers=layers)
    except ValueError as error:
        raise InputError(f"{model}: {error}") from None


def _architecture(config: HyperpriorConfig) -> str:
    kind = "mean-scale" if config.mean_scale else "scale-only"
    return f"N={config.n} M={config.m} {kind} in_channels={config.in_channels}"


def train_image_hyperprior(
    data: str | Path,
    config: TrainConfig,
    model_config: HyperpriorConfig | None = None,
    metric: str = "mse",
    crop: int = 256,
    val_fraction: float = 0.05,
    init_from: str | Path | None = None,
    whole_images: bool = False,
    task_loss: str | None = None,
    task_weight: float = 0.0,
    task_layers: Sequence[str] = (),
) -> ImageHyperprior | ImageContextModel:
    """Train (or resume) an :class:`ImageHyperprior` on random crops of the images under ``data``.

    A deterministic ``val_fraction`` of the files is held out for validation. Checkpoints and the
    JSONL log go to ``config.out_dir``. ``init_from`` (a shipped model id or a .safetensors path)
    starts from existing weights, e.g. to fine-tune a domain codec or to add rate levels (other
    ``model_config.lambdas``; the architecture must be the model's); a checkpoint in ``out_dir`` wins.
    A context model (``codec train image-context``) as ``init_from`` is fine-tuned end to end, its
    transforms, hyperprior and context networks together, at its own levels.
    ``model_config`` None: the ``init_from`` model's config, or the default one.
    ``whole_images`` trains on whole same-size images (e.g. faces) instead of random crops. ``task_loss``
    (a classifier or face-embedder id/path) adds ``task_weight`` x its task-aware distortion to the loss,
    comparing its output and, with ``task_layers``, those intermediate features too.
    """
    train_files, val_files = split_files(list_images(data), val_fraction)
    if whole_images:
        train_set = WholeImageDataset(train_files, seed=config.seed)
        val_set = WholeImageDataset(val_files, flip=False) if val_files else None
    else:
        train_set = RandomCropDataset(
            train_files, crop=crop, samples_per_epoch=max(1000, config.batch_size * 100), seed=config.seed
        )
        val_set = CenterCropDataset(val_files, crop=256) if val_files else None
    start = model_from_weights(load_named_weights(str(init_from), ImageHyperpriorCodec.name)) if init_from else None
    start_config = None if start is None else start.config.image if isinstance(start, ImageContextModel) else start.config
    model_config = model_config or start_config or HyperpriorConfig()
    if start is None:
        model = ImageHyperprior(model_config)
    elif isinstance(start, ImageContextModel):
        if start_config != model_config:
            raise InputError(f"{init_from} is a context model: fine-tune it with its own architecture and levels")
        model = start  # end to end: transforms, hyperprior and context networks together
    elif replace(start.config, lambdas=model_config.lambdas) != model_config:
        raise InputError(f"{init_from} has architecture {_architecture(start.config)}, "
                         f"not {_architecture(model_config)}")
    elif start.config.levels == model_config.levels:
        start.config = model_config  # new λs for the same levels: fine-tuning moves each level's gains
        model = start
    else:
        model = start.with_lambdas(model_config.lambdas)  # levels added or removed
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model_config.json").write_text(json.dumps(model.config.to_dict(), indent=2))
    distortion = perception_task_distortion(task_loss, task_layers) if task_loss else None
    loss = RateDistortionLoss(metric, task_distortion=distortion, task_weight=task_weight)
    task = ImageRateDistortionTask(model_config.lambdas, loss)
    return fit(model, task, train_set, val_set, config)
