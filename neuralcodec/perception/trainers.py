"""`codec train classifier` and `codec train face-embedder`: the perception models `codec eval --task` uses."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from neuralcodec.train.arguments import Trainer, TrainDefaults, export_from_rank_zero

if TYPE_CHECKING:
    from neuralcodec.train.loop import TrainConfig


def _add_classifier_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--width", type=int, default=24, help="channel width multiplier")
    p.add_argument("--labels", type=Path, default=None, metavar="IDX",
                   help="the IDX labels file of --data (default: its *-labels-idx1-ubyte[.gz] twin beside it)")


def _add_face_embedder_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--width", type=int, default=16, help="channel width multiplier")
    p.add_argument("--architecture", choices=["strided", "residual"], default="strided",
                   help="network design (train one of each to check results on an unseen recognizer)")


def _train_classifier(args: argparse.Namespace, config: "TrainConfig") -> None:
    import numpy as np

    from neuralcodec.perception import data, networks, training
    from neuralcodec.perception.weights import export_perception_model

    labelled = data.read_idx_pair(args.data, args.labels)
    val_mask = np.random.default_rng(args.seed).random(len(labelled.labels)) < args.val_fraction
    model_config = networks.ClassifierConfig(height=labelled.images.shape[1], width=labelled.images.shape[2],
                                             classes=int(labelled.labels.max()) + 1, width_multiplier=args.width)
    model = training.train_classifier(labelled.subset(~val_mask), labelled.subset(val_mask), config, model_config)
    export_from_rank_zero(args, lambda path, model_id: export_perception_model(model, path, model_id=model_id),
                          "codec eval --task classify --task-model {path}")


def _train_face_embedder(args: argparse.Namespace, config: "TrainConfig") -> None:
    from neuralcodec.perception import data, networks, training
    from neuralcodec.perception.weights import export_perception_model

    train, held_out = data.split_faces(data.read_orl_faces(args.data))
    model_config = networks.FaceEmbedderConfig(height=train.images.shape[1], width=train.images.shape[2],
                                               width_multiplier=args.width, architecture=args.architecture)
    model = training.train_face_embedder(train, held_out, config, model_config)
    export_from_rank_zero(args, lambda path, model_id: export_perception_model(model, path, model_id=model_id),
                          "codec eval --task face-id --task-model {path}")


TRAINERS = (
    Trainer(name="classifier", help="a grey-image classifier for `codec eval --task classify`",
            data_help="an IDX images file (labels: --labels, or the labels file beside it)",
            defaults=TrainDefaults(batch_size=128, lr=2e-3, val_batch_size=512),
            add_arguments=_add_classifier_arguments, run=_train_classifier),
    Trainer(name="face-embedder", help="a face embedder for `codec eval --task face-id`",
            data_help="the ORL faces folder (labels.csv); subjects 29-40 are held out",
            defaults=TrainDefaults(batch_size=32, lr=2e-3, val_batch_size=128),
            add_arguments=_add_face_embedder_arguments, run=_train_face_embedder),
)
