"""The lossless-pc family as the registry and the CLI see it: options, input sniffing, trainer."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from neuralcodec.codecs.lossless.header import check_header
from neuralcodec.codecs.base import SNIFF_CONTENT, SNIFF_NO, Family
from neuralcodec.codecs.lossless.options import LosslessOptions
from neuralcodec.container import Payload
from neuralcodec.media.idx import is_idx_path
from neuralcodec.media.images import LOSSLESS_SUFFIXES, image_files, probe_gray_size
from neuralcodec.pretrained import list_models
from neuralcodec.train.arguments import TrainDefaults, Trainer, export_from_rank_zero

if TYPE_CHECKING:
    from neuralcodec.train.loop import TrainConfig

NAME = "lossless-pc"


def _shipped_sizes() -> set[tuple[int, int]]:
    return {(m.config.get("height"), m.config.get("width")) for m in list_models() if m.codec == NAME}


def sniff(path: Path) -> int:
    """IDX files; 8-bit grey images, or folders of them, of a shipped lossless model's size."""
    if path.is_file() and is_idx_path(path):
        return SNIFF_CONTENT
    if path.is_dir():
        files = image_files(path, LOSSLESS_SUFFIXES)
        return SNIFF_CONTENT if files and probe_gray_size(files[0]) in _shipped_sizes() else SNIFF_NO
    if path.is_file() and probe_gray_size(path) in _shipped_sizes():
        return SNIFF_CONTENT
    return SNIFF_NO


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hidden", type=int, default=32, help="latent states per pixel (H)")


def _train(args: argparse.Namespace, config: "TrainConfig") -> None:
    from neuralcodec.codecs.lossless.training import export_lossless_pc, train_lossless_pc

    model = train_lossless_pc(args.data, config, hidden=args.hidden, val_fraction=args.val_fraction)
    export_from_rank_zero(args, lambda path, model_id: export_lossless_pc(model, path, model_id),
                          "codec encode IMAGES OUT.ncd --model {path}")


TRAINER = Trainer(
    name=NAME, help="the lossless circuit codec (HCLT), on same-size 8-bit grey images",
    data_help="an IDX file or a folder of same-size 8-bit grayscale images",
    defaults=TrainDefaults(batch_size=256, lr=0.05, val_batch_size=256),
    add_arguments=_add_train_arguments, run=_train,
)


def _decoded_suffix(payload: Payload) -> str:
    """One image decodes to a PNG; several (an IDX file or a folder was coded) to a folder of PNGs."""
    return "" if "count" in payload.metadata else ".png"


def _codec_class() -> type:
    from neuralcodec.codecs.lossless.codec import LosslessCircuitCodec

    return LosslessCircuitCodec


FAMILY = Family(name=NAME, summary="lossless 8-bit grey images of a fixed size (IDX files, folders): HCLT circuits",
                sniff=sniff, options=LosslessOptions, load_codec_class=_codec_class,
                check_header=check_header, decoded_suffix=_decoded_suffix, trainers=(TRAINER,))
