"""Face identification and verification on held-out identities with the shipped face embedder.

Protocol (leave-one-out over the evaluated faces): the decoded probe is compared with every other
*uncompressed* face (the enrolled gallery). Identification is correct when its most similar gallery
face shows the same person (rank-1). Verification accepts a pair when the cosine similarity exceeds a
threshold fixed on uncompressed faces for a 1% false-accept rate, so compression moves both the
true-accept rate (TAR) and the false-accept rate (FAR) away from their uncompressed values.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralcodec.errors import InputError
from neuralcodec.eval.tasks.base import Modality, Sample, mean_of
from neuralcodec.perception.data import FACE_HELD_OUT_SUBJECTS, read_orl_faces
from neuralcodec.perception.weights import embed_faces, load_face_embedder

TARGET_FAR = 0.01


class FaceIdentificationTask:
    """Rank-1 identification accuracy (headline), TAR/FAR at a fixed threshold and the cosine similarity
    between a face's embeddings before and after coding."""

    name = "face-id"
    modality: Modality = "image"
    headline = "accuracy"
    higher_is_better = True

    def __init__(self, embedder: str = "face-embedder-orl", subjects: Sequence[int] | None = FACE_HELD_OUT_SUBJECTS) -> None:
        self.embedder = load_face_embedder(embedder)
        self.subjects = subjects
        self._keys: list[str] = []
        self._labels = np.zeros(0, dtype=np.int64)
        self._gallery = torch.zeros(0)
        self.threshold = float("nan")

    def samples(self, data: Path | None, limit: int | None = None) -> list[Sample]:
        """The faces of ``self.subjects`` (all subjects when None) in the ORL-layout folder ``data``;
        ``limit`` keeps the first ``limit`` faces of each subject (in list order) as probes, but the
        gallery is always complete."""
        if data is None:
            raise InputError("the face-id task needs --data: the ORL faces folder (with labels.csv)")
        faces = read_orl_faces(data)
        if self.subjects is not None:
            faces = faces.subset(np.isin(faces.labels, self.subjects))
        if len(np.unique(faces.labels)) < 2:
            raise InputError(f"{data} has fewer than two of the evaluated subjects; identification needs more")
        size = (self.embedder.config.height, self.embedder.config.width)
        if faces.images.shape[1:] != size:
            raise InputError(f"faces in {data} are {faces.images.shape[1:]}; the embedder takes {size}")
        self._keys = list(faces.names)
        self._labels = faces.labels
        self._gallery = embed_faces(self.embedder, torch.from_numpy(faces.images))
        self.threshold = self._threshold_at_far(TARGET_FAR)
        seen: dict[int, int] = {}
        samples = []
        for name, image, label in zip(faces.names, faces.images, faces.labels):
            seen[int(label)] = seen.get(int(label), 0) + 1
            if limit is None or seen[int(label)] <= limit:
                samples.append(Sample(name, image, int(label)))
        return samples

    def _threshold_at_far(self, far: float) -> float:
        """The cosine similarity above which ``far`` of the uncompressed different-person pairs lie."""
        similarity = (self._gallery @ self._gallery.t()).numpy()
        different = self._labels[:, None] != self._labels[None, :]
        return float(np.quantile(similarity[different], 1.0 - far))

    def score(self, original: Sample, decoded: np.ndarray) -> dict[str, Any]:
        try:
            index = self._keys.index(original.key)
        except ValueError:
            raise InputError(f"{original.key} is not one of this task's samples (call samples() first)") from None
        embedding = embed_faces(self.embedder, torch.tensor(decoded)[None])[0]
        similarity = (self._gallery @ embedding).numpy()
        others = np.arange(len(self._keys)) != index
        same = (self._labels == self._labels[index]) & others
        different = self._labels != self._labels[index]
        best = np.flatnonzero(others)[np.argmax(similarity[others])]
        accepted = similarity > self.threshold
        return {"correct": int(self._labels[best] == self._labels[index]),
                "genuine_accepted": int(accepted[same].sum()), "genuine": int(same.sum()),
                "impostor_accepted": int(accepted[different].sum()), "impostor": int(different.sum()),
                "cosine_to_original": float(similarity[index])}

    def summarize(self, scores: Sequence[dict[str, Any]]) -> dict[str, float]:
        def ratio(part: str, whole: str) -> float:
            total = sum(s[whole] for s in scores)
            return sum(s[part] for s in scores) / total if total else float("nan")

        return {"accuracy": mean_of(scores, "correct"), "tar": ratio("genuine_accepted", "genuine"),
                "far": ratio("impostor_accepted", "impostor"),
                "cosine_to_original": mean_of(scores, "cosine_to_original"), "samples": len(scores)}
