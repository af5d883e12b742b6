"""The labelled datasets the perception models train and are evaluated on (read by path, never shipped)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neuralcodec.media.idx import read_idx
from neuralcodec.media.images import read_gray_image
from neuralcodec.errors import InputError

FACE_HELD_OUT_SUBJECTS = tuple(range(29, 41))
"""ORL subjects never seen in training: the face task identifies them, the embedder never trained on them."""


@dataclass(frozen=True)
class LabelledImages:
    """Grey images (N x H x W uint8), integer labels and a name per image."""

    images: np.ndarray
    labels: np.ndarray
    names: list[str]

    def subset(self, mask: np.ndarray) -> LabelledImages:
        return LabelledImages(self.images[mask], self.labels[mask], [n for n, keep in zip(self.names, mask) if keep])


def read_orl_faces(root: str | Path) -> LabelledImages:
    """The ORL faces under ``root`` (a folder with ``labels.csv`` listing ``path,subject,...``)."""
    root = Path(root)
    table = root / "labels.csv"
    if not table.is_file():
        raise InputError(f"{root} has no labels.csv (expected the ORL faces folder, e.g. ../shared/data/faces/orl)")
    with open(table, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"path", "subject"} <= set(rows[0]):
        raise InputError(f"{table} must have 'path' and 'subject' columns")
    images = np.stack([read_gray_image(root / row["path"]) for row in rows])
    return LabelledImages(images, np.array([int(row["subject"]) for row in rows]), [row["path"] for row in rows])


def split_faces(faces: LabelledImages, held_out: tuple[int, ...] = FACE_HELD_OUT_SUBJECTS) -> tuple[LabelledImages, LabelledImages]:
    """(training subjects, held-out subjects)."""
    unseen = np.isin(faces.labels, held_out)
    return faces.subset(~unseen), faces.subset(unseen)


def read_idx_pair(images_path: str | Path, labels_path: str | Path | None = None) -> LabelledImages:
    """Images from an IDX file and labels from its ``*-labels-idx1-ubyte[.gz]`` twin (found by name when
    ``labels_path`` is None)."""
    images_path = Path(images_path)
    if labels_path is None:
        labels_path = images_path.with_name(images_path.name.replace("images-idx3", "labels-idx1"))
        if labels_path == images_path or not labels_path.exists():
            raise InputError(f"no labels file beside {images_path} (expected {labels_path.name}); give it with --labels")
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise InputError(f"{images_path} ({images.shape}) and {labels_path} ({labels.shape}) are not images + labels")
    return LabelledImages(images, labels.astype(np.int64), [f"{i:05d}" for i in range(len(images))])
