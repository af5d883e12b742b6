"""Image classification tasks: the project's shipped grey-image classifiers (MNIST / Fashion-MNIST, scored
against the true labels) and any torchvision architecture with user-supplied weights (scored against its
own prediction on the uncompressed image, since the weights' label set is the user's)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuralcodec.errors import InputError
from neuralcodec.eval.tasks.base import Modality, Sample, mean_of, optional_module
from neuralcodec.perception.data import read_idx_pair
from neuralcodec.perception.weights import load_classifier
from neuralcodec.media.images import list_images, read_rgb

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ShippedClassifierTask:
    """Top-1 accuracy of a shipped (or user-trained) grey classifier on an IDX test set with labels.

    ``data`` is the IDX images file; its labels are the IDX file ``labels``, or when that is None the
    labels file beside it (e.g. ``t10k-labels-idx1-ubyte.gz``).
    Per sample: ``correct`` (against the label) and ``agrees`` (same class as on the original)."""

    name = "classify"
    modality: Modality = "image"
    headline = "accuracy"
    higher_is_better = True

    def __init__(self, model: str = "classifier-mnist", labels: str | Path | None = None) -> None:
        if labels is not None and not Path(labels).is_file():
            raise InputError(f"labels file not found: {labels}")
        self.model = load_classifier(model)
        self.model_name = model
        self.labels = labels
        self._original_predictions: dict[str, int] = {}

    def samples(self, data: Path | None, limit: int | None = None) -> list[Sample]:
        if data is None:
            raise InputError("the classify task needs --data: an IDX images file (and its labels, --labels)")
        labelled = read_idx_pair(data, self.labels)
        size = (self.model.config.height, self.model.config.width)
        if labelled.images.shape[1:] != size:
            raise InputError(f"{data} holds {labelled.images.shape[1:]} images; {self.model_name} takes {size}")
        count = len(labelled.labels) if limit is None else min(limit, len(labelled.labels))
        return [Sample(labelled.names[i], labelled.images[i], int(labelled.labels[i])) for i in range(count)]

    @torch.no_grad()
    def _predict(self, image: np.ndarray) -> int:
        return int(self.model(torch.tensor(image, dtype=torch.float32)[None, None] / 255.0).argmax(1))

    def score(self, original: Sample, decoded: np.ndarray) -> dict[str, Any]:
        if original.key not in self._original_predictions:
            self._original_predictions[original.key] = self._predict(original.signal)
        predicted = self._predict(decoded)
        return {"correct": int(predicted == original.target),
                "agrees": int(predicted == self._original_predictions[original.key])}

    def summarize(self, scores: Sequence[dict[str, Any]]) -> dict[str, float]:
        return {"accuracy": mean_of(scores, "correct"), "agreement": mean_of(scores, "agrees"), "samples": len(scores)}


def load_torchvision_classifier(architecture: str, weights: str | Path) -> torch.nn.Module:
    """``torchvision.models.get_model(architecture)`` with the state dict in ``weights`` (.pth/.pt loaded
    with ``weights_only=True``, or .safetensors), in eval mode."""
    torchvision = optional_module("torchvision", "classify --arch")
    try:
        model = torchvision.models.get_model(architecture, weights=None)
    except ValueError as error:
        raise InputError(f"unknown torchvision architecture {architecture!r}: {error}") from None
    path = Path(weights)
    if not path.is_file():
        raise InputError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises several types for non-checkpoint files
            raise InputError(f"{path} is not a loadable state dict ({error})") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise InputError(f"{path} does not fit torchvision's {architecture}: {str(error).splitlines()[0]}") from None
    return model.eval()


class TorchvisionClassifierTask:
    """Top-1 / top-5 agreement of a torchvision classifier's prediction on the decoded image with its
    prediction on the original (ImageNet preprocessing: shorter side to 256, centre 224 crop)."""

    name = "classify"
    modality: Modality = "image"
    headline = "top1_agreement"
    higher_is_better = True

    def __init__(self, architecture: str, weights: str | Path, crop: int = 224) -> None:
        self.model = load_torchvision_classifier(architecture, weights)
        self.crop = crop
        self._original_predictions: dict[str, int] = {}

    def samples(self, data: Path | None, limit: int | None = None) -> list[Sample]:
        if data is None:
            raise InputError("the classify task with --arch needs --data: a folder of images")
        return [Sample(path.name, read_rgb(path)) for path in list_images(data)[:limit]]

    @torch.no_grad()
    def _logits(self, image: np.ndarray) -> torch.Tensor:
        from torchvision.transforms import v2

        x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        x = v2.CenterCrop(self.crop)(v2.Resize(round(self.crop * 256 / 224), antialias=True)(x))
        x = v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)(x.float() / 255.0)
        return self.model(x[None])[0]

    def score(self, original: Sample, decoded: np.ndarray) -> dict[str, Any]:
        if original.key not in self._original_predictions:
            self._original_predictions[original.key] = int(self._logits(original.signal).argmax())
        reference = self._original_predictions[original.key]
        logits = self._logits(decoded)
        top5 = logits.topk(min(5, logits.numel())).indices.tolist()
        return {"top1": int(top5[0] == reference), "top5": int(reference in top5)}

    def summarize(self, scores: Sequence[dict[str, Any]]) -> dict[str, float]:
        return {"top1_agreement": mean_of(scores, "top1"), "top5_agreement": mean_of(scores, "top5"),
                "samples": len(scores)}
