"""The video-st family as the registry and the CLI see it: options, input sniffing, trainer."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from neuralcodec.codecs.video.header import check_header
from neuralcodec.codecs.base import SNIFF_NO, SNIFF_SUFFIX, Family
from neuralcodec.codecs.video.options import VideoOptions
from neuralcodec.media.images import LOSSLESS_SUFFIXES, image_files
from neuralcodec.media.video import VIDEO_SUFFIXES
from neuralcodec.train.arguments import TrainDefaults, Trainer, export_from_rank_zero

if TYPE_CHECKING:
    from neuralcodec.train.loop import TrainConfig

NAME = "video-st"


def sniff(path: Path) -> int:
    """Video files by suffix, and folders of lossless frames."""
    if path.is_file():
        return SNIFF_SUFFIX if path.suffix.lower() in VIDEO_SUFFIXES else SNIFF_NO
    return SNIFF_SUFFIX if path.is_dir() and image_files(path, LOSSLESS_SUFFIXES) else SNIFF_NO


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--init-from", default=None,
                   help="the frozen image model whose transforms code the frames (shipped id or .safetensors; "
                        "default: the shipped image-hyperprior; a shipped model is referenced by the exported "
                        "weights, not copied)")
    p.add_argument("--synthetic-from", type=Path, default=None, metavar="PHOTOS",
                   help="also train on clips synthesized from these photos (pans, zooms, rotations, brightness drift)")
    p.add_argument("--synthetic-clips", type=int, default=1500, help="number of synthetic clips")
    p.add_argument("--clip-length", type=int, default=3, help="frames per training clip (I + P-frames)")
    p.add_argument("--crop", type=int, default=256, help="random crop size (multiple of 64)")
    p.add_argument("--prior-width", type=int, default=128, help="width of the prior networks")
    p.add_argument("--no-temporal", action="store_true", help="ablation: no temporal prior")
    p.add_argument("--no-spatial", action="store_true", help="ablation: no checkerboard spatial context")


def _train(args: argparse.Namespace, config: "TrainConfig") -> None:
    from neuralcodec.codecs.video.export import export_video_model
    from neuralcodec.codecs.video.training import train_video
    image_model = image_model_of(args)
    model = train_video(config, image_model, clips_root=args.data,
                        photos_root=args.synthetic_from, synthetic_count=args.synthetic_clips, length=args.clip_length,
                        crop=args.crop, hidden=args.prior_width, temporal=not args.no_temporal,
                        spatial=not args.no_spatial, val_fraction=args.val_fraction)
    export_naming_image(args, image_model, lambda path, model_id, image_id: export_video_model(model, path, model_id,
                                                                                                image_id))


def image_model_of(args: argparse.Namespace) -> str:
    """The image model a video trainer builds on: ``--init-from``, else :func:`default_video_image_model`."""
    return args.init_from or default_video_image_model()


def default_video_image_model() -> str:
    """The image hyperprior that the shipped default video model names (a plain hyperprior: the default
    image model has a context model on top, which a video trainer does not take)."""
    from neuralcodec.codecs.image.reference import IMAGE_REFERENCE_KEY
    from neuralcodec.pretrained import default_model

    return str(default_model("video-mc").config[IMAGE_REFERENCE_KEY]["model_id"])


def export_naming_image(args: argparse.Namespace, image_model: str,
                        export: Callable[[Path, str, str | None], object]) -> None:
    """Export a trained video model with ``export(path, model_id, image_model_id)``; the id is given (and the
    weights name the image model instead of copying it) when ``image_model`` is a shipped model."""
    from neuralcodec.pretrained import names_weights_file

    shipped = not names_weights_file(image_model)  # the trainer loaded it, so it is a shipped id
    note = f" (the weights name the shipped image model {image_model!r} instead of holding a copy)" if shipped else ""
    export_from_rank_zero(args, lambda path, model_id: export(path, model_id, image_model if shipped else None),
                          "codec encode VIDEO OUT.ncd --model {path}", note)


TRAINER = Trainer(
    name=NAME, help="the spatiotemporal video prior, on clips and/or clips synthesized from photos",
    data_help="a folder of clips (folders of frames, videos), optional with --synthetic-from",
    defaults=TrainDefaults(batch_size=16, lr=5e-4, val_batch_size=32),
    add_arguments=_add_train_arguments, run=_train,
    data_optional=lambda args: args.synthetic_from is not None,
)


def _codec_class() -> type:
    from neuralcodec.codecs.video.codec import VideoCodec

    return VideoCodec


FAMILY = Family(name=NAME, summary="video (Y4M; MP4, MKV... through ffmpeg; folders of frames): spatiotemporal prior",
                sniff=sniff, options=VideoOptions, load_codec_class=_codec_class,
                check_header=check_header, decoded_suffix=lambda payload: ".y4m", trainers=(TRAINER,))
