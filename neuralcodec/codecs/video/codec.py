"""The spatiotemporal video codec as a file codec: frames streamed in, one ANS stream per frame.

Bitstream of a P-frame (decode order): the hyper-latent ``z_t`` (its own learned factorized tables),
then the anchor residuals ``round(y - μ)`` (checkerboard positions with ``(i + j)`` even) with the
Gaussian tables, then the other positions, whose parameters also use the decoded anchors. I-frames
(the first frame of each group of pictures, and any other frame whose I-frame is smaller than its
P-frame, e.g. after a scene cut) are coded exactly as the image codec codes an image.

Determinism: every quantity a decoder rebuilds (the priors, the fusion, the gains) runs in float64 on
the CPU; means are snapped to a 1/``MEAN_GRID`` grid and scales to the shared table, and each frame
stores a CRC32 of its scale indexes. A frame's reconstruction depends only on its own latent, so a
decoder's frames equal the encoder's bit for bit, and nothing drifts over a long group of pictures.

File layout (.ncd): see :mod:`neuralcodec.codecs.video.sequence`.
"""

from __future__ import annotations

import copy
from typing import ClassVar

import numpy as np
import torch

from neuralcodec.codecs.common.checkerboard import anchor_mask
from neuralcodec.codecs.common.determinism import check_index_crc, scale_index_crc, snap_means
from neuralcodec.codecs.common.inference import inference_form
from neuralcodec.codecs.common.transforms import ANALYSIS_STRIDE, HYPER_STRIDE
from neuralcodec.codecs.common.weights import restore_model
from neuralcodec.codecs.image.codec import ImageHyperpriorCodec, to_uint8_image
from neuralcodec.codecs.image.model import padded_side
from neuralcodec.codecs.image.reference import with_referenced_image
from neuralcodec.codecs.video.model import SpatiotemporalVideoModel, VideoConfig
from neuralcodec.codecs.video.sequence import FrameCoding, FrameSettings, SequenceCodec
from neuralcodec.entropy import SymbolDecoder, SymbolEncoder
from neuralcodec.pretrained import LoadedWeights


class VideoCodec(SequenceCodec):
    """Encode/decode videos with a :class:`SpatiotemporalVideoModel`."""

    name: ClassVar[str] = "video-st"

    def __init__(self, model: SpatiotemporalVideoModel, model_id: str, weights_hash: bytes, device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.config = model.config
        self.device = torch.device(device)
        super().__init__(model_id, weights_hash, ImageHyperpriorCodec(model.image, model_id, weights_hash, device))
        # The decoder-side path of P-frames: float64 on the CPU, always.
        self._prior64 = inference_form(model.prior).double().cpu()
        self._latent_gain64 = copy.deepcopy(model.image.latent_gain).double().cpu().eval()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_weights(cls, weights: LoadedWeights, device: str = "cpu") -> VideoCodec:
        return cls(video_model_from_weights(weights), weights.model_id, weights.weights_hash, device)

    @staticmethod
    def export_tensors(model: SpatiotemporalVideoModel) -> dict[str, torch.Tensor]:
        """Tensors of a weights file: both models' parameters and their hyper-latent coding tables."""
        model.image.entropy_bottleneck.build_tables()
        model.prior.entropy_bottleneck.build_tables()
        return model.state_dict()

    # ------------------------------------------------------------------ one frame
    def _gain64(self, level: float) -> torch.Tensor:
        ones = torch.ones(1, self.config.image.m, 1, 1, dtype=torch.float64)
        return self._latent_gain64.scale(ones, torch.tensor([level], dtype=torch.float64))

    def _parameters(self, priors: list[torch.Tensor], gain: torch.Tensor, y_prev_hat: torch.Tensor,
                    y_anchors: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
        """Snapped (means, scales) of the gained latent, on the float64 CPU path."""
        u_anchors = None if y_anchors is None else y_anchors / gain
        means, scales = self._prior64.parameters_from(priors, y_prev_hat.double() / gain, u_anchors)
        return snap_means(gain * means), (gain * scales).numpy()

    def _frame_priors(self, z_hat: torch.Tensor, y_prev_hat: torch.Tensor, gain: torch.Tensor,
                      level: float) -> list[torch.Tensor]:
        level_t = torch.tensor([level], dtype=torch.float64)
        return self._prior64.frame_priors(z_hat.double(), y_prev_hat.double() / gain, level_t)

    def _passes(self, shape: tuple[int, ...]) -> list[np.ndarray]:
        """Boolean position masks in coding order: anchors then the rest (one pass without context)."""
        if not self.config.spatial:
            return [np.ones(shape, dtype=bool)]
        anchors = np.broadcast_to(anchor_mask(*shape[-2:]).numpy().astype(bool), shape)
        return [anchors, ~anchors]

    @torch.no_grad()
    def encode_p_frame(self, y: torch.Tensor, y_prev_hat: torch.Tensor, level: float,
                       encoder: SymbolEncoder) -> tuple[torch.Tensor, int]:
        """Code a P-frame's gained latent given the previous decoded latent; returns (ŷ, index CRC)."""
        level_t = torch.tensor([level], device=self.device)
        gain = self.model.latent_gain(level_t)
        z = self.model.prior.side_latent(y / gain, y_prev_hat.to(self.device) / gain, level_t)
        z_hat = self.model.prior.entropy_bottleneck.compress(z, encoder)
        gain64 = self._gain64(level)
        priors = self._frame_priors(z_hat, y_prev_hat, gain64, level)
        y64 = y.detach().cpu().double().numpy()
        y_hat = np.zeros_like(y64)
        scale_rows = []
        for index, mask in enumerate(self._passes(y64.shape)):
            anchors = torch.from_numpy(y_hat) if index else None
            means, scales = self._parameters(priors, gain64, y_prev_hat, anchors)
            coded = self.model.prior.gaussian_conditional.compress(y64[mask], means[mask], scales[mask], encoder)
            y_hat[mask] = coded.double().numpy()
            scale_rows.append(scales[mask])
        return torch.from_numpy(y_hat).float(), scale_index_crc(np.concatenate(scale_rows))

    @torch.no_grad()
    def decode_p_frame(self, latent_shape: tuple[int, ...], y_prev_hat: torch.Tensor, level: float,
                       decoder: SymbolDecoder, index_crc: object) -> torch.Tensor:
        """Inverse of :meth:`encode_p_frame`."""
        _, m, height, width = latent_shape
        z_shape = (1, self.config.image.n, height // HYPER_STRIDE, width // HYPER_STRIDE)
        z_hat = self.model.prior.entropy_bottleneck.decompress(z_shape, decoder)
        gain64 = self._gain64(level)
        priors = self._frame_priors(z_hat, y_prev_hat, gain64, level)
        y_hat = np.zeros(latent_shape, dtype=np.float64)
        scale_rows = []
        for index, mask in enumerate(self._passes(latent_shape)):
            anchors = torch.from_numpy(y_hat) if index else None
            means, scales = self._parameters(priors, gain64, y_prev_hat, anchors)
            decoded = self.model.prior.gaussian_conditional.decompress(means[mask], scales[mask], decoder)
            y_hat[mask] = decoded.double().numpy()
            scale_rows.append(scales[mask])
        check_index_crc(scale_index_crc(np.concatenate(scale_rows)), index_crc)
        return torch.from_numpy(y_hat).float()

    @torch.no_grad()
    def code_frame(self, frame: np.ndarray, reference: torch.Tensor | None, settings: FrameSettings, adaptive_intra: bool,
                   last_intra_bytes: int) -> FrameCoding:
        """Code a frame's latent as a P-frame given the previous decoded latent ``reference``, or as an
        I-frame when there is none or (``adaptive_intra``) when that is smaller. At equal P- and I-frame
        levels both choices quantize the same latent (with other means), so they cost the same distortion
        on average and the rate decides."""
        x = torch.from_numpy(np.array(frame, dtype=np.float32)).permute(2, 0, 1)[None] / 255.0
        y = self.intra.analyze(x, settings.predicted)
        candidates = []
        if reference is not None:
            encoder = SymbolEncoder()
            y_hat, crc = self.encode_p_frame(y, reference, settings.predicted, encoder)
            candidates.append((encoder.finish(), y_hat, crc, False))
        if reference is None or adaptive_intra:
            encoder = SymbolEncoder()
            y_intra = y if settings.intra == settings.predicted else self.intra.analyze(x, settings.intra)
            y_hat, crc = self.intra.encode_latent(y_intra, settings.intra, encoder)
            candidates.append((encoder.finish(), y_hat, crc, True))
        stream, y_hat, crc, intra = min(candidates, key=lambda candidate: len(candidate[0]))
        level = settings.intra if intra else settings.predicted
        decoded = to_uint8_image(self.intra.synthesize(y_hat, level, *frame.shape[:2]))
        return FrameCoding(stream, y_hat, decoded, crc, intra)

    @torch.no_grad()
    def decode_frame(self, decoder: SymbolDecoder, reference: torch.Tensor | None, height: int, width: int,
                     settings: FrameSettings, index_crc: object) -> tuple[torch.Tensor, np.ndarray]:
        level = settings.intra if reference is None else settings.predicted
        if reference is None:
            y_hat = self.intra.decode_latent(height, width, level, decoder, index_crc)
        else:
            latent_shape = (1, self.config.image.m, padded_side(height) // ANALYSIS_STRIDE,
                            padded_side(width) // ANALYSIS_STRIDE)
            y_hat = self.decode_p_frame(latent_shape, reference, level, decoder, index_crc)
        return y_hat, to_uint8_image(self.intra.synthesize(y_hat, level, height, width))


def video_model_from_weights(weights: LoadedWeights) -> SpatiotemporalVideoModel:
    """The :class:`SpatiotemporalVideoModel` stored in ``weights`` (fp16 tensors are loaded as float32),
    completed by the shipped image model the file names, if it names one."""
    config = VideoConfig.from_dict(weights.config)
    return restore_model(SpatiotemporalVideoModel(config), with_referenced_image(weights, config.image, "video model"))
