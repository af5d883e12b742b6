"""The image-hyperprior family as the registry and the CLI see it: options, input sniffing, trainer."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from neuralcodec.codecs.image.header import check_header
from neuralcodec.codecs.base import SNIFF_NO, SNIFF_SUFFIX, Family
from neuralcodec.codecs.image.options import ImageOptions
from neuralcodec.errors import InputError
from neuralcodec.media.images import IMAGE_SUFFIXES
from neuralcodec.train.arguments import TrainDefaults, Trainer, export_from_rank_zero

if TYPE_CHECKING:
    from neuralcodec.codecs.image.model import HyperpriorConfig
    from neuralcodec.train.loop import TrainConfig

NAME = "image-hyperprior"


def sniff(path: Path) -> int:
    """Image files by suffix."""
    return SNIFF_SUFFIX if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES else SNIFF_NO


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--init-from", default=None, metavar="MODEL",
                   help="start from these weights (shipped model id or .safetensors) instead of random ones; the "
                        "architecture and rate levels are then the model's, and flags that contradict them are errors")
    p.add_argument("--lmbda", type=float, action="append", default=None,
                   help="rate-distortion trade-off; repeat for a variable-rate model (default: 6 levels "
                        "0.0018-0.0483; with --init-from: the model's)")
    p.add_argument("--change-levels", action="store_true",
                   help="with --init-from: train the --lmbda levels instead of the model's (levels added, removed or "
                        "moved; each new level starts from the nearest trained one)")
    p.add_argument("--metric", choices=["mse", "ms-ssim"], default="mse", help="distortion of the loss")
    p.add_argument("--channels", type=int, default=None,
                   help="transform width N (default: 128; with --init-from: the model's)")
    p.add_argument("--latent-channels", type=int, default=None,
                   help="latent channels M (default: 192; with --init-from: the model's)")
    p.add_argument("--scale-only", action="store_true",
                   help="scale hyperprior (Ballé 2018) instead of mean-scale (with --init-from: as the model is)")
    p.add_argument("--crop", type=int, default=256, help="random crop size (multiple of 64)")
    p.add_argument("--whole-images", action="store_true",
                   help="train on whole same-size images (e.g. faces) instead of random crops")
    p.add_argument("--task-loss", default=None, metavar="MODEL",
                   help="add a task-aware distortion, 1 - cosine between this frozen classifier's or face "
                        "embedder's outputs on x and on the reconstruction (shipped id or .safetensors)")
    p.add_argument("--task-layers", default="", metavar="NAMES",
                   help="with --task-loss: comma-separated submodules of the task network (e.g. features.3) whose "
                        "outputs are compared too, averaged with the final output")
    p.add_argument("--task-weight", type=float, default=0.0,
                   help="alpha: weight of the task-aware distortion, in units of 255^2*MSE (with --task-loss)")


_CONFIG_FLAGS = {"n": "--channels", "m": "--latent-channels", "mean_scale": "--scale-only", "lambdas": "--lmbda"}
"""The flag that sets each :class:`HyperpriorConfig` field."""


def _describe(field: str, value: object) -> str:
    """A config field's value as an error message shows it."""
    if field == "mean_scale":
        return "mean-scale" if value else "scale-only"
    if field == "lambdas":
        return f"{len(value)} levels: λ {', '.join(f'{v:g}' for v in value)}"
    return f"{field.upper()}={value}"


def _model_config(args: argparse.Namespace) -> "HyperpriorConfig":
    """The architecture and levels to train: the flags given, over the ``--init-from`` model's config (or the
    defaults). A flag contradicting the starting model is an error (``--lmbda`` only without ``--change-levels``)."""
    from dataclasses import replace

    from neuralcodec.codecs.image.context import CONTEXT_KEY, ImageContextConfig
    from neuralcodec.codecs.image.model import HyperpriorConfig
    from neuralcodec.pretrained import load_named_weights

    given = {"n": args.channels, "m": args.latent_channels, "mean_scale": False if args.scale_only else None,
             "lambdas": tuple(args.lmbda) if args.lmbda else None}
    given = {field: value for field, value in given.items() if value is not None}
    if args.change_levels and (args.init_from is None or "lambdas" not in given):
        raise InputError("--change-levels goes with --init-from and --lmbda")
    if args.init_from is None:
        return HyperpriorConfig(**given)
    stored = load_named_weights(args.init_from, NAME).config
    start = (ImageContextConfig.from_dict(stored).image if CONTEXT_KEY in stored  # a context model: its hyperprior's
             else HyperpriorConfig.from_dict(stored))
    for field, value in given.items():
        if value == getattr(start, field) or (field == "lambdas" and args.change_levels):
            continue
        hint = "add --change-levels to train these levels instead" if field == "lambdas" else "leave the flag out"
        raise InputError(f"{_CONFIG_FLAGS[field]} ({_describe(field, value)}) contradicts --init-from {args.init_from}, "
                         f"which has {_describe(field, getattr(start, field))}; {hint}")
    return replace(start, **given)


def _train(args: argparse.Namespace, config: "TrainConfig") -> None:
    from neuralcodec.codecs.image.export import export_image_hyperprior
    from neuralcodec.codecs.image.training import train_image_hyperprior

    if (args.task_loss is None) != (args.task_weight == 0):
        raise InputError("--task-loss and a non-zero --task-weight go together")
    task_layers = tuple(name for name in args.task_layers.split(",") if name)
    if task_layers and args.task_loss is None:
        raise InputError("--task-layers needs --task-loss")
    model = train_image_hyperprior(args.data, config, _model_config(args), metric=args.metric, crop=args.crop,
                                   val_fraction=args.val_fraction, init_from=args.init_from,
                                   whole_images=args.whole_images, task_loss=args.task_loss,
                                   task_weight=args.task_weight, task_layers=task_layers)
    export_from_rank_zero(args, lambda path, model_id: export_image_hyperprior(model, path, model_id),
                          "codec encode IMG OUT.ncd --model {path}")


TRAINER = Trainer(
    name=NAME, help="the hyperprior image codec, on a folder of photos",
    data_help="folder of training images (searched recursively) or a .txt list of image paths",
    defaults=TrainDefaults(batch_size=8, lr=1e-4, val_batch_size=1),
    add_arguments=_add_train_arguments, run=_train,
)


def _add_context_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--init-from", required=True,
                   help="the trained mean-scale hyperprior to build on (shipped id or .safetensors); it stays frozen")
    p.add_argument("--groups", default="8,8,16,32,64",
                   help="channels per group in coding order, comma-separated; they sum to the latent channels M")
    p.add_argument("--no-checkerboard", action="store_true",
                   help="code each group in one pass (no spatial context)")
    p.add_argument("--hidden", type=int, default=96, help="width of the parameter networks")
    p.add_argument("--context-channels", type=int, default=48, help="width of the channel/spatial context features")
    p.add_argument("--channel-layers", type=int, default=1, choices=(1, 2),
                   help="3x3 convolutions from the decoded earlier groups to the channel context")
    p.add_argument("--keep-channel-order", action="store_true",
                   help="code channels in their own order (default: by decreasing hyperprior rate)")
    p.add_argument("--crops", type=int, default=4000, help="training crops whose latents are cached")
    p.add_argument("--val-crops", type=int, default=64, help="crops of the held-out images whose latents validate")
    p.add_argument("--crop", type=int, default=256, help="crop size (multiple of 64)")
    p.add_argument("--context-from", default=None, metavar="MODEL",
                   help="continue from this context model (shipped id or .safetensors, trained on --init-from); "
                        "its architecture replaces --groups and the other architecture flags")
    p.add_argument("--latent-cache", type=Path, default=None,
                   help="folder of the cached latents (default OUT/latents; runs on the same data can share one)")


def _train_context(args: argparse.Namespace, config: "TrainConfig") -> None:
    from neuralcodec.codecs.image.context import ContextConfig
    from neuralcodec.codecs.image.context_training import train_image_context
    from neuralcodec.codecs.image.export import export_image_hyperprior
    from neuralcodec.pretrained import names_weights_file

    try:
        groups = tuple(int(g) for g in args.groups.split(","))
    except ValueError:
        raise InputError(f"--groups must be comma-separated channel counts, got {args.groups!r}") from None
    if args.crop % 64 or args.crop < 64:
        raise InputError(f"--crop must be a positive multiple of 64, got {args.crop}")
    context = ContextConfig(groups=groups, checkerboard=not args.no_checkerboard, hidden=args.hidden,
                            context_channels=args.context_channels, channel_layers=args.channel_layers)
    model = train_image_context(args.data, config, args.init_from, context, crops=args.crops,
                                val_crops=args.val_crops, crop=args.crop, val_fraction=args.val_fraction,
                                order_channels=not args.keep_channel_order, cache_dir=args.latent_cache,
                                context_from=args.context_from)
    shipped = None if names_weights_file(args.init_from) else args.init_from
    export_from_rank_zero(args, lambda path, model_id: export_image_hyperprior(model, path, model_id, shipped),
                          "codec encode IMG OUT.ncd --model {path}",
                          "" if shipped is None else f" (it names the shipped {shipped}, which it needs)")


CONTEXT_TRAINER = Trainer(
    name="image-context",
    help="a spatial-channel context entropy model for a trained image hyperprior, on cached latents",
    data_help="folder of training images (searched recursively) or a .txt list of image paths",
    defaults=TrainDefaults(batch_size=8, lr=1e-3, val_batch_size=16, steps=2_000),
    add_arguments=_add_context_arguments, run=_train_context,
)


def _codec_class() -> type:
    from neuralcodec.codecs.image.codec import ImageHyperpriorCodec

    return ImageHyperpriorCodec


FAMILY = Family(name=NAME, summary="lossy images (PNG, JPEG, WebP, BMP, TIFF...): mean-scale hyperprior",
                sniff=sniff, options=ImageOptions, load_codec_class=_codec_class,
                check_header=check_header, decoded_suffix=lambda payload: ".png",
                trainers=(TRAINER, CONTEXT_TRAINER))
