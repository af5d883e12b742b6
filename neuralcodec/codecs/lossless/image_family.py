"""The lossless-image family as the registry and the CLI see it: any 8-bit image, exactly (`--lossless`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from neuralcodec.codecs.base import SNIFF_NO, SNIFF_SUFFIX, Family
from neuralcodec.codecs.lossless.image_header import check_header
from neuralcodec.codecs.lossless.options import LosslessOptions
from neuralcodec.media.images import LOSSLESS_SUFFIXES
from neuralcodec.train.arguments import TrainDefaults, Trainer, export_from_rank_zero

if TYPE_CHECKING:
    from neuralcodec.train.loop import TrainConfig

NAME = "lossless-image"


def sniff(path: Path) -> int:
    """Lossless image files by suffix (the lossy image family, listed first, wins the tie: this family codes
    an image when asked, with --lossless or --codec lossless-image)."""
    return SNIFF_SUFFIX if path.is_file() and path.suffix.lower() in LOSSLESS_SUFFIXES else SNIFF_NO


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hidden", type=int, default=32, help="latent states per circuit variable (H)")
    p.add_argument("--per-image", type=int, default=60000, help="random pixels sampled from each photo")
    p.add_argument("--contexts", default="errors", help="context scheme: errors (neighbour gradients and MED "
                   "errors, lossless-image-h64) or gradients (lossless-image-h32)")


def _train(args: argparse.Namespace, config: "TrainConfig") -> None:
    from neuralcodec.codecs.lossless.image_training import export_lossless_image, train_lossless_image

    model = train_lossless_image(args.data, config, hidden=args.hidden, per_image=args.per_image,
                                 contexts=args.contexts)
    export_from_rank_zero(args, lambda path, model_id: export_lossless_image(model, path, model_id),
                          "codec encode PHOTO.png OUT.ncd --model {path}")


TRAINER = Trainer(
    name=NAME, help="the lossless image codec (chain circuits over MED residuals and contexts), on photos",
    data_help="a folder of 8-bit photos (searched recursively; every 15th file is held out for validation)",
    defaults=TrainDefaults(batch_size=4096, lr=0.05, val_batch_size=8192),
    add_arguments=_add_train_arguments, run=_train,
)


def _codec_class() -> type:
    from neuralcodec.codecs.lossless.image_codec import LosslessImageCodec

    return LosslessImageCodec


FAMILY = Family(name=NAME, summary="lossless 8-bit grey/RGB/RGBA images of any size (--lossless): circuits over "
                                   "predictor residuals", sniff=sniff, options=LosslessOptions,
                load_codec_class=_codec_class, check_header=check_header, decoded_suffix=lambda payload: ".png",
                trainers=(TRAINER,))
