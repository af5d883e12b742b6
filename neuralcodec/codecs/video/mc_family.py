"""The video-mc family (motion-compensated video) as the registry and the CLI see it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from neuralcodec.codecs.base import Family
from neuralcodec.codecs.video.family import export_naming_image, image_model_of, sniff
from neuralcodec.codecs.video.header import check_header
from neuralcodec.codecs.video.options import VideoOptions
from neuralcodec.train.arguments import TrainDefaults, Trainer

if TYPE_CHECKING:
    from neuralcodec.train.loop import TrainConfig

CODEC_NAME = "video-mc"


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--init-from", default=None,
                   help="the image model that codes I-frames and starts the residual coder (shipped id or "
                        ".safetensors; default: the shipped image-hyperprior, referenced by the exported weights)")
    p.add_argument("--synthetic-from", type=Path, default=None, metavar="PHOTOS",
                   help="also train on frame pairs synthesized from these photos (pans, zooms, rotations)")
    p.add_argument("--synthetic-pairs", type=int, default=4000, help="number of synthetic frame pairs")
    p.add_argument("--crop", type=int, default=128, help="training crop size (multiple of 64)")
    p.add_argument("--crops-per-window", type=int, default=8, help="random crops of each real frame pair")


def _train(args: argparse.Namespace, config: "TrainConfig") -> None:
    from neuralcodec.codecs.video.mc_export import export_mc_model
    from neuralcodec.codecs.video.mc_model import MotionCompensatedConfig, MotionCompensatedVideoModel
    from neuralcodec.codecs.video.residual_training import train_residual_coder
    from neuralcodec.codecs.video.training import frozen_image_model

    image_model = image_model_of(args)
    residual = train_residual_coder(config, image_model, clips_root=args.data, photos_root=args.synthetic_from,
                                    synthetic_count=args.synthetic_pairs, crop=args.crop,
                                    crops_per_window=args.crops_per_window, val_fraction=args.val_fraction)
    image = frozen_image_model(image_model)
    model = MotionCompensatedVideoModel(MotionCompensatedConfig(image.config), image, residual)
    export_naming_image(args, image_model, lambda path, model_id, image_id: export_mc_model(model, path, model_id,
                                                                                             image_id))


TRAINER = Trainer(
    name=CODEC_NAME, help="the residual coder of the motion-compensated video codec, on clips and/or photos",
    data_help="a folder of clips (folders of frames, videos), optional with --synthetic-from",
    defaults=TrainDefaults(batch_size=16, lr=1e-4, val_batch_size=32),
    add_arguments=_add_train_arguments, run=_train,
    data_optional=lambda args: args.synthetic_from is not None,
)


def _codec_class() -> type:
    from neuralcodec.codecs.video.mc_codec import MotionCompensatedVideoCodec

    return MotionCompensatedVideoCodec


FAMILY = Family(name=CODEC_NAME, summary="video (Y4M; MP4, MKV... through ffmpeg; folders of frames): block motion "
                                         "compensation and learned residual coding",
                sniff=sniff, options=VideoOptions, load_codec_class=_codec_class,
                check_header=check_header, decoded_suffix=lambda payload: ".y4m", trainers=(TRAINER,))
