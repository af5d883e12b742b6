"""Small CNNs for the machine-perception tasks: sized to train in minutes on a CPU."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


def _conv_block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


@dataclass(frozen=True)
class ClassifierConfig:
    """A grey-image classifier: input size, number of classes and channel width."""

    height: int = 28
    width: int = 28
    classes: int = 10
    width_multiplier: int = 32

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ClassifierConfig:
        return cls(**data)


class GrayClassifier(nn.Module):
    """Four conv blocks (two at full, two at half resolution) + global pooling + linear; takes
    ``N x 1 x H x W`` floats in [0, 1] and returns class logits."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        c = config.width_multiplier
        self.features = nn.Sequential(
            _conv_block(1, c, 1), _conv_block(c, c, 1), nn.MaxPool2d(2),
            _conv_block(c, 2 * c, 1), _conv_block(2 * c, 2 * c, 1), nn.MaxPool2d(2),
            _conv_block(2 * c, 4 * c, 1),
        )
        self.head = nn.Linear(4 * c, config.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x - 0.5)
        return self.head(features.mean(dim=(2, 3)))


FACE_ARCHITECTURES = ("strided", "residual")


@dataclass(frozen=True)
class FaceEmbedderConfig:
    """A grey face-image embedder: input size, embedding size, channel width and architecture
    (``strided``: plain strided convolutions; ``residual``: residual blocks with max pooling)."""

    height: int = 112
    width: int = 92
    embedding: int = 128
    width_multiplier: int = 32
    architecture: str = "strided"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FaceEmbedderConfig:
        return cls(**data)


class _ResidualBlock(nn.Module):
    """Two 3x3 conv blocks with an identity (or 1x1-projected) shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv_block(cin, cout, 1), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class FaceEmbedder(nn.Module):
    """Conv features to 1/16 resolution, global pooling and a linear projection to a unit-norm embedding;
    takes ``N x 1 x H x W`` floats in [0, 1]. Differentiable, so codecs can train against it.

    ``strided``: seven conv blocks, four of them strided, global average pooling. ``residual``: a 5x5
    strided stem, three residual blocks each followed by 2x2 max pooling, global average and max pooling
    concatenated: a second, differently built recognizer for checking that results carry over."""

    def __init__(self, config: FaceEmbedderConfig) -> None:
        super().__init__()
        if config.architecture not in FACE_ARCHITECTURES:
            raise ValueError(f"unknown face embedder architecture {config.architecture!r}")
        self.config = config
        c = config.width_multiplier
        if config.architecture == "strided":
            self.features = nn.Sequential(
                _conv_block(1, c, 1), _conv_block(c, c, 2),
                _conv_block(c, 2 * c, 1), _conv_block(2 * c, 2 * c, 2),
                _conv_block(2 * c, 4 * c, 1), _conv_block(4 * c, 4 * c, 2),
                _conv_block(4 * c, 8 * c, 2),
            )
            pooled = 8 * c
        else:
            self.features = nn.Sequential(
                nn.Conv2d(1, c, 5, 2, 2, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                _ResidualBlock(c, 2 * c), nn.MaxPool2d(2),
                _ResidualBlock(2 * c, 4 * c), nn.MaxPool2d(2),
                _ResidualBlock(4 * c, 4 * c), nn.MaxPool2d(2),
            )
            pooled = 8 * c
        self.projection = nn.Linear(pooled, config.embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x - 0.5)
        if self.config.architecture == "strided":
            pooled = features.mean(dim=(2, 3))
        else:
            pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)
        return F.normalize(self.projection(pooled), dim=1)
