"""The motion-compensated video model: an I-frame image hyperprior and a residual hyperprior.

I-frames are coded by the image model as images. A P-frame is the block-motion prediction from the
previous decoded frame (:mod:`neuralcodec.codecs.video.motion`) plus a residual coded by the residual
model, an image hyperprior of the same architecture and gain levels fine-tuned on prediction residuals
(:mod:`neuralcodec.codecs.video.residual_training`).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from neuralcodec.codecs.image.model import HyperpriorConfig, ImageHyperprior


@dataclass(frozen=True)
class MotionCompensatedConfig:
    """Architecture of a :class:`MotionCompensatedVideoModel` (both parts share the image config)."""

    image: HyperpriorConfig

    def to_dict(self) -> dict:
        return {"image": self.image.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> MotionCompensatedConfig:
        return cls(image=HyperpriorConfig.from_dict(data["image"]))


class MotionCompensatedVideoModel(nn.Module):
    """``image`` codes I-frames, ``residual`` codes P-frame prediction residuals."""

    def __init__(self, config: MotionCompensatedConfig, image: ImageHyperprior | None = None,
                 residual: ImageHyperprior | None = None) -> None:
        super().__init__()
        self.config = config
        self.image = image if image is not None else ImageHyperprior(config.image)
        self.residual = residual if residual is not None else ImageHyperprior(config.image)
        if self.image.config != config.image or self.residual.config != config.image:
            raise ValueError("the image and residual models must have the config's architecture")
