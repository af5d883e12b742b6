"""Saving and loading the perception models as safetensors, in the same registry as the codecs."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from neuralcodec.errors import InputError
from neuralcodec.perception.networks import ClassifierConfig, FaceEmbedder, FaceEmbedderConfig, GrayClassifier
from neuralcodec.pretrained import LoadedWeights, load_pretrained, load_weights_file, save_weights

CLASSIFIER_KIND = "classifier"
FACE_EMBEDDER_KIND = "face-embedder"


def export_perception_model(model: GrayClassifier | FaceEmbedder, path: str | Path, model_id: str) -> str:
    """Write ``model`` (fp16) with its config; returns the file's sha256."""
    kind = CLASSIFIER_KIND if isinstance(model, GrayClassifier) else FACE_EMBEDDER_KIND
    return save_weights(path, model.state_dict(), codec=kind, model_id=model_id, config=model.config.to_dict())


def _read(model: str) -> LoadedWeights:
    return load_weights_file(model) if model.endswith(".safetensors") or Path(model).is_file() else load_pretrained(model)


def _weights(model: str, kind: str) -> LoadedWeights:
    weights = _read(model)
    if weights.codec != kind:
        raise InputError(f"{model} holds a {weights.codec} model, not a {kind}")
    return weights


def _restore(module: nn.Module, weights: LoadedWeights) -> nn.Module:
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in weights.tensors.items()})
    return module.eval()


def load_classifier(model: str) -> GrayClassifier:
    """A shipped classifier id (e.g. ``classifier-mnist``) or a classifier .safetensors path, in eval mode."""
    weights = _weights(model, CLASSIFIER_KIND)
    return _restore(GrayClassifier(ClassifierConfig.from_dict(weights.config)), weights)


def load_face_embedder(model: str = "face-embedder-orl") -> FaceEmbedder:
    """A shipped face embedder id or a face-embedder .safetensors path, in eval mode."""
    weights = _weights(model, FACE_EMBEDDER_KIND)
    return _restore(FaceEmbedder(FaceEmbedderConfig.from_dict(weights.config)), weights)


def load_perception_model(model: str) -> GrayClassifier | FaceEmbedder:
    """A classifier or face embedder (shipped id or .safetensors path), whichever ``model`` holds."""
    kind = _read(model).codec
    if kind == CLASSIFIER_KIND:
        return load_classifier(model)
    if kind == FACE_EMBEDDER_KIND:
        return load_face_embedder(model)
    raise InputError(f"{model} holds a {kind} model, not a classifier or face embedder")


@torch.no_grad()
def embed_faces(embedder: FaceEmbedder, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Unit embeddings of ``N x H x W`` uint8 grey faces."""
    parts = [embedder(images[i:i + batch_size, None].float() / 255.0) for i in range(0, len(images), batch_size)]
    return torch.cat(parts)
