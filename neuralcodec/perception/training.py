"""Training the perception models through the project's one training loop (:func:`neuralcodec.train.loop.fit`)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from neuralcodec.perception.data import LabelledImages
from neuralcodec.perception.networks import ClassifierConfig, FaceEmbedder, FaceEmbedderConfig, GrayClassifier
from neuralcodec.train.loop import TrainConfig, fit


class ImageLabelSet(Dataset):
    """``(1 x H x W float image in [0, 1], label)`` pairs; with ``augment``, random shifts of up to
    ``shift`` pixels (edge padding), horizontal flips and brightness/contrast changes."""

    def __init__(self, data: LabelledImages, augment: bool = False, shift: int = 6, flip: bool = True) -> None:
        self.images = data.images
        self.labels = data.labels
        self.augment = augment
        self.shift = shift
        self.flip = flip
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index].astype(np.float32) / 255.0
        if self.augment:
            image = self._augmented(image)
        return torch.from_numpy(np.ascontiguousarray(image))[None], torch.tensor(int(self.labels[index]))

    def _augmented(self, image: np.ndarray) -> np.ndarray:
        s = self.shift
        dy, dx = self.rng.integers(-s, s + 1, size=2)
        padded = np.pad(image, s, mode="edge")
        image = padded[s + dy:s + dy + image.shape[0], s + dx:s + dx + image.shape[1]]
        if self.flip and self.rng.random() < 0.5:
            image = image[:, ::-1]
        contrast, brightness = self.rng.uniform(0.75, 1.25), self.rng.uniform(-0.1, 0.1)
        return np.clip((image - 0.5) * contrast + 0.5 + brightness, 0.0, 1.0)


class ClassificationTask:
    """Cross-entropy training; validation accuracy."""

    def training_step(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        images, labels = batch
        logits = model(images)
        return {"loss": F.cross_entropy(logits, labels), "accuracy": (logits.argmax(1) == labels).float().mean()}

    def validate(self, model: nn.Module, loader: DataLoader) -> dict[str, float]:
        correct = total = 0
        for images, labels in loader:
            images, labels = images.to(_device_of(model)), labels.to(_device_of(model))
            correct += int((model(images).argmax(1) == labels).sum())
            total += len(labels)
        return {"accuracy": correct / max(total, 1)}


class MarginSoftmaxHead(nn.Module):
    """An embedder plus one learned unit vector per training identity; the loss is the additive-cosine-
    margin softmax (CosFace): ``scale * (cos(e, w_y) - margin)`` for the true class. Only the embedder ships."""

    def __init__(self, embedder: FaceEmbedder, identities: int, scale: float = 16.0, margin: float = 0.2) -> None:
        super().__init__()
        self.embedder = embedder
        self.centers = nn.Parameter(torch.randn(identities, embedder.config.embedding))
        self.scale = scale
        self.margin = margin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedder(x)

    def loss(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cosines = self.embedder(images) @ F.normalize(self.centers, dim=1).t()
        logits = self.scale * (cosines - self.margin * F.one_hot(labels, cosines.shape[1]))
        return F.cross_entropy(logits, labels), (cosines.argmax(1) == labels).float().mean()


class FaceEmbeddingTask:
    """CosFace training; validation = leave-one-out nearest-neighbour identification accuracy."""

    def training_step(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        head = model.module if hasattr(model, "module") else model
        loss, accuracy = head.loss(*batch)
        return {"loss": loss, "train_accuracy": accuracy}

    def validate(self, model: nn.Module, loader: DataLoader) -> dict[str, float]:
        embeddings, labels = [], []
        for images, batch_labels in loader:
            embeddings.append(model(images.to(_device_of(model))).cpu())
            labels.append(batch_labels)
        return {"rank1_leave_one_out": leave_one_out_rank1(torch.cat(embeddings), torch.cat(labels))}


def leave_one_out_rank1(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of embeddings whose most similar other embedding has the same label."""
    similarity = embeddings @ embeddings.t()
    similarity.fill_diagonal_(-float("inf"))
    return float((labels[similarity.argmax(1)] == labels).float().mean())


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def train_classifier(train: LabelledImages, val: LabelledImages, config: TrainConfig,
                     model_config: ClassifierConfig) -> GrayClassifier:
    """Train (or resume) a :class:`GrayClassifier`; shifts of up to 2 pixels, no flips (digits are not symmetric)."""
    model = GrayClassifier(model_config)
    fit(model, ClassificationTask(), ImageLabelSet(train, augment=True, shift=2, flip=False), ImageLabelSet(val), config)
    return model


def train_face_embedder(train: LabelledImages, val: LabelledImages, config: TrainConfig,
                        model_config: FaceEmbedderConfig) -> FaceEmbedder:
    """Train (or resume) a :class:`FaceEmbedder` on ``train``'s identities (labels need not be contiguous)."""
    identities = np.unique(train.labels)
    remapped = LabelledImages(train.images, np.searchsorted(identities, train.labels), train.names)
    head = MarginSoftmaxHead(FaceEmbedder(model_config), len(identities))
    fit(head, FaceEmbeddingTask(), ImageLabelSet(remapped, augment=True), ImageLabelSet(val), config)
    return head.embedder
