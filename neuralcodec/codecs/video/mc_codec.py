"""The motion-compensated video codec (``video-mc``) as a file codec: frames streamed in, one ANS stream
per frame.

An I-frame is coded as the image codec codes an image. A P-frame stream holds the block motion field
(:mod:`neuralcodec.codecs.video.motion`), then the residual latent of the frame minus its motion-
compensated prediction from the previous decoded frame, coded by the residual hyperprior. The decoded
P-frame is ``clip(prediction + round(255 · r̂))``. Files of this version predict with overlapped block
motion compensation and code latents only over the picture (the flags ``overlapped_motion`` and
``cropped_latent``); files without the flags decode as they were written. Where the shipped image
context model on the video model's I-frame hyperprior is installed, I-frames are coded with it (the
file's ``intra_context``: :mod:`neuralcodec.codecs.video.context_models`). The prediction is filtered
with a kernel fitted per frame (``filtered_prediction``: :mod:`neuralcodec.codecs.video.prediction_filter`),
and a P-frame's motion field and residual hyper-latent are coded with the previous P-frame's (if the
previous frame is one) as context (``temporal_motion``, ``temporal_hyper_latent``:
:mod:`neuralcodec.codecs.video.hyper_latent_context`).

Determinism: decoded frames are references for the next frame, so both synthesis transforms run in
float64 on the CPU and their output is rounded to 8 bits; motion compensation is integer arithmetic;
the entropy parameters take the image codec's float64 path with snapped means and a CRC32 of the
scale indexes per frame. A decoder then rebuilds the encoder's frames bit for bit (a float64 rounding
difference would have to straddle a half-integer to change a pixel).

Rate control per frame: I-frames are coded ``INTRA_LEVEL_BOOST`` gain levels above the file's level
(the file's ``intra_level``; files without it code them at ``level``). A P-frame position is coded as an
I-frame instead when that has the lower rate-distortion cost ``bits/pixel + λ·255²·MSE`` at the file's
level (scene cuts). The I-frame is only tried when the P-frame costs more than ``INTRA_TRY_SHARE`` of the
last I-frame's bits.

File layout (.ncd): metadata as the ``video-st`` codec's (``height``, ``width``, ``level``, ``gop``,
``frames``, ``fps_num``/``fps_den``, ``frame_bytes``, ``index_crc``, ``intra_frames``, ``intra_level``)
plus the flags above; one section ``frames`` holding the streams back to back.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from neuralcodec.codecs.common.inference import inference_form
from neuralcodec.codecs.common.weights import restore_model
from neuralcodec.codecs.image.codec import ImageHyperpriorCodec, lambda_at
from neuralcodec.codecs.image.model import ImageHyperprior
from neuralcodec.codecs.image.reference import IMAGE_REFERENCE_KEY, with_referenced_image
from neuralcodec.codecs.video.context_models import CONTEXT_MODEL, context_entry, named_context_model
from neuralcodec.codecs.video.hyper_latent_context import TemporalHyperLatentCoder, TemporalHyperLatentTables
from neuralcodec.codecs.video.mc_model import MotionCompensatedConfig, MotionCompensatedVideoModel
from neuralcodec.codecs.video.motion import decode_motion, encode_motion, estimate_motion, field_shape, predict
from neuralcodec.codecs.video.prediction_filter import apply_filter, decode_filter, encode_filter, fit_filter
from neuralcodec.codecs.video.sequence import FrameCoding, FrameSettings, SequenceCodec
from neuralcodec.entropy import SymbolDecoder, SymbolEncoder
from neuralcodec.pretrained import LoadedWeights

MOTION_RATE_WEIGHT = 0.5
"""Motion estimation trades prediction error for cheaper vectors with ``rate_weight = this / sqrt(λ)``
(11.8 at quality 4): the best of 0.35 / 0.5 / 0.68 on the training clips (Vimeo, synthetic camera motion
and moving objects) once fields are coded with the previous one as context (BD-rate -1.7 / -1.7 / -2.5%
against 0.68, which was chosen for spatial coding on BasketballPass frames 1-2)."""
INTRA_LEVEL_BOOST = 1.5
"""I-frames are coded this many gain levels above the P-frames (λ x 2.8): the best of 0/1/1.5/2 on the six
Vimeo training clips (``benchmarks/video_mc_intra_level.py``: BD-rate -3.9% against 0)."""
INTRA_TRY_SHARE = 0.5
"""A P-frame whose stream exceeds this share of the last I-frame's is also tried as an I-frame."""


@dataclass(frozen=True)
class MotionReference:
    """What the next P-frame is predicted from, the decoded frame (H, W, 3) uint8, and, when that frame is
    a P-frame, its motion field and residual hyper-latent symbols (the next P-frame's coding contexts)."""

    frame: np.ndarray
    field: np.ndarray | None = None
    hyper_symbols: np.ndarray | None = None


class ExactSynthesis:
    """An image hyperprior's synthesis transform on the float64 CPU path: (1, 3, H, W) float64, unclamped."""

    def __init__(self, model: ImageHyperprior) -> None:
        self._synthesis = inference_form(model.g_s).double().cpu()
        self._gain = copy.deepcopy(model.latent_gain).double().cpu().eval()

    @torch.no_grad()
    def __call__(self, y_hat: torch.Tensor, level: float, height: int, width: int) -> torch.Tensor:
        level_t = torch.tensor([level], dtype=torch.float64)
        return self._synthesis(self._gain.unscale(y_hat.double().cpu(), level_t))[..., :height, :width]


def _picture(frame: np.ndarray, settings: FrameSettings) -> tuple[int, int] | None:
    """The picture size a frame's latents are cropped to, None when the file codes whole latents."""
    return frame.shape[:2] if settings.cropped_latent else None


def _pixels(values: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) float64 values in [0, 255] scale -> (H, W, 3) uint8, rounding half to even."""
    return np.clip(np.rint(values[0].permute(1, 2, 0).numpy()), 0, 255).astype(np.uint8)


class MotionCompensatedVideoCodec(SequenceCodec):
    """Encode/decode videos with a :class:`MotionCompensatedVideoModel`."""

    name: ClassVar[str] = "video-mc"
    intra_level_boost: ClassVar[float] = INTRA_LEVEL_BOOST
    crops_latents: ClassVar[bool] = True
    overlaps_motion: ClassVar[bool] = True
    filters_prediction: ClassVar[bool] = True
    codes_motion_temporally: ClassVar[bool] = True
    codes_hyper_latent_temporally: ClassVar[bool] = True
    motion_rate_weight: ClassVar[float] = MOTION_RATE_WEIGHT
    chooses_vectors_by_code_length: ClassVar[bool] = True
    """Whether, where a field is coded with the previous one as context, the encoder chooses each vector by
    its estimated code length under it (:func:`~neuralcodec.codecs.video.motion.estimate_motion`)."""

    def __init__(self, model: MotionCompensatedVideoModel, model_id: str, weights_hash: bytes,
                 device: str = "cpu", image_reference: dict | None = None) -> None:
        """``image_reference``: the weights' entry naming the shipped I-frame hyperprior, if they name one
        (then frames may be coded with a context model built on it)."""
        self.model = model.to(device).eval()
        self.device = device
        self.residual = ImageHyperpriorCodec(model.residual, model_id, weights_hash, device)
        self._intra_synthesis = ExactSynthesis(model.image)
        self._residual_synthesis = ExactSynthesis(model.residual)
        self._hyper_tables: TemporalHyperLatentTables | None = None
        self._image_reference = image_reference
        self._context_codecs: dict[str, ImageHyperpriorCodec] = {}
        super().__init__(model_id, weights_hash, ImageHyperpriorCodec(model.image, model_id, weights_hash, device))
        self.intra_context = context_entry(CONTEXT_MODEL, image_reference)

    @classmethod
    def from_weights(cls, weights: LoadedWeights, device: str = "cpu") -> MotionCompensatedVideoCodec:
        config = MotionCompensatedConfig.from_dict(weights.config)
        model = restore_model(MotionCompensatedVideoModel(config),
                              with_referenced_image(weights, config.image, "video model"))
        return cls(model, weights.model_id, weights.weights_hash, device, weights.config.get(IMAGE_REFERENCE_KEY))

    def checked_intra_context(self, entry: object) -> str | None:
        """A file's ``intra_context`` entry, the I-frame codec it names built (see :mod:`~.context_models`)."""
        if entry is not None:
            self._intra_codec(entry)
        return entry  # type: ignore[return-value]  # a str: _intra_codec checked it

    def _intra_codec(self, entry: object) -> ImageHyperpriorCodec:
        """The I-frame codec of the context model ``entry`` names (None: the video model's own hyperprior)."""
        if entry is None:
            return self.intra
        if str(entry) not in self._context_codecs:
            self._context_codecs[str(entry)] = ImageHyperpriorCodec(
                named_context_model(entry, self._image_reference), self.model_id,
                self.weights_hash, self.device)
        return self._context_codecs[str(entry)]

    # ------------------------------------------------------------------ frames
    def _intra_frame(self, frame: np.ndarray, settings: FrameSettings) -> FrameCoding:
        height, width = frame.shape[:2]
        x = torch.from_numpy(frame.astype(np.float32)).permute(2, 0, 1)[None] / 255
        encoder, intra = SymbolEncoder(), self._intra_codec(settings.intra_context)
        y_hat, crc = intra.encode_latent(intra.analyze(x, settings.intra), settings.intra, encoder,
                                         picture=_picture(frame, settings))
        decoded = self._intra_pixels(y_hat, settings.intra, height, width)
        return FrameCoding(encoder.finish(), MotionReference(decoded), decoded, crc, True)

    def _intra_pixels(self, y_hat: torch.Tensor, level: float, height: int, width: int) -> np.ndarray:
        return _pixels(255 * self._intra_synthesis(y_hat, level, height, width).clamp(0, 1))

    def _predicted_frame(self, frame: np.ndarray, reference: MotionReference, settings: FrameSettings,
                         lmbda: float) -> FrameCoding:
        level = settings.predicted
        previous = reference.field if settings.temporal_motion else None
        motion = estimate_motion(reference.frame, frame, self.motion_rate_weight / lmbda**0.5,
                                 previous if self.chooses_vectors_by_code_length else None)
        prediction = predict(reference.frame, motion, settings.overlapped_motion)
        encoder = SymbolEncoder()
        encode_motion(motion, encoder, previous)
        if settings.filtered_prediction:
            taps = fit_filter(prediction, frame)
            encode_filter(taps, encoder)
            prediction = apply_filter(prediction, taps)
        residual = torch.from_numpy(frame.astype(np.float32) - prediction).permute(2, 0, 1)[None] / 255
        hyper_coder = self._hyper_coder(reference, settings)
        y_hat, crc = self.residual.encode_latent(self.residual.analyze(residual, level), level, encoder,
                                                 picture=_picture(frame, settings), hyper_coder=hyper_coder)
        decoded = self._add_residual(prediction, y_hat, level)
        return FrameCoding(encoder.finish(), MotionReference(decoded, motion, hyper_coder.symbols), decoded, crc,
                           False)

    def _hyper_coder(self, reference: MotionReference, settings: FrameSettings) -> TemporalHyperLatentCoder:
        """The coder of a P-frame's residual hyper-latent: with the previous P-frame's symbols as context in
        files that say so (``temporal_hyper_latent``), else with the factorized prior's own tables."""
        if self._hyper_tables is None:
            self._hyper_tables = TemporalHyperLatentTables(self.residual.image.entropy_bottleneck)
        return self._hyper_tables.coder(reference.hyper_symbols if settings.temporal_hyper_latent else None)

    def _add_residual(self, prediction: np.ndarray, y_hat: torch.Tensor, level: float) -> np.ndarray:
        height, width = prediction.shape[:2]
        residual = 255 * self._residual_synthesis(y_hat, level, height, width)
        return _pixels(torch.from_numpy(prediction.astype(np.float64)).permute(2, 0, 1)[None] + residual)

    @torch.no_grad()
    def code_frame(self, frame: np.ndarray, reference: MotionReference | None, settings: FrameSettings,
                   adaptive_intra: bool, last_intra_bytes: int) -> FrameCoding:
        """Code ``frame`` as a P-frame from ``reference`` (the previous decoded frame), or as an I-frame when
        there is none or (``adaptive_intra``) when that has the lower rate-distortion cost."""
        if reference is None:
            return self._intra_frame(frame, settings)
        lmbda = lambda_at(self.intra.image.config.lambdas, settings.predicted)
        predicted = self._predicted_frame(frame, reference, settings, lmbda)
        if not adaptive_intra or len(predicted.stream) <= INTRA_TRY_SHARE * last_intra_bytes:
            return predicted
        intra = self._intra_frame(frame, settings)
        pixels = frame.shape[0] * frame.shape[1]

        def cost(coding: FrameCoding) -> float:
            mse = np.mean((coding.decoded.astype(np.float64) - frame) ** 2)
            return 8 * len(coding.stream) / pixels + lmbda * mse

        return min((predicted, intra), key=cost)

    @torch.no_grad()
    def decode_frame(self, decoder: SymbolDecoder, reference: MotionReference | None, height: int, width: int,
                     settings: FrameSettings, index_crc: object) -> tuple[MotionReference, np.ndarray]:
        """The frame coded in ``decoder`` and the reference state it leaves (the frame and its motion
        field): an I-frame when ``reference`` is None, else a P-frame predicted from it."""
        if reference is None:
            y_hat = self._intra_codec(settings.intra_context).decode_latent(
                height, width, settings.intra, decoder, index_crc, cropped=settings.cropped_latent)
            frame = self._intra_pixels(y_hat, settings.intra, height, width)
        else:
            field = decode_motion(*field_shape(height, width), decoder,
                                  reference.field if settings.temporal_motion else None)
            prediction = predict(reference.frame, field, settings.overlapped_motion)
            if settings.filtered_prediction:
                prediction = apply_filter(prediction, decode_filter(decoder))
            hyper_coder = self._hyper_coder(reference, settings)
            y_hat = self.residual.decode_latent(height, width, settings.predicted, decoder, index_crc,
                                                cropped=settings.cropped_latent, hyper_coder=hyper_coder)
            frame = self._add_residual(prediction, y_hat, settings.predicted)
            return MotionReference(frame, field, hyper_coder.symbols), frame
        return MotionReference(frame), frame
