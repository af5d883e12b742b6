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

File layout (.ncd): metadata ``height``, ``width``, ``level``, ``gop``, ``frames``, ``fps_num``/``fps_den``,
``frame_bytes`` (list), ``index_crc`` (list) and ``intra_frames`` (indexes of frames coded as I-frames
inside a group of pictures, because that was smaller: scene cuts); one section ``frames`` holding the
streams back to back.
"""

from __future__ import annotations

import copy
import hashlib
import time
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from neuralcodec.codecs.base import EncodeResult, progress_bar
from neuralcodec.codecs.common.determinism import check_index_crc, scale_index_crc, snap_means
from neuralcodec.codecs.common.inference import inference_form
from neuralcodec.codecs.common.transforms import ANALYSIS_STRIDE, HYPER_STRIDE
from neuralcodec.codecs.common.weights import restore_model
from neuralcodec.codecs.image.codec import ImageHyperpriorCodec, padded_side, to_uint8_image
from neuralcodec.codecs.common.checkerboard import anchor_mask
from neuralcodec.codecs.image.reference import with_referenced_image
from neuralcodec.codecs.video.header import video_info
from neuralcodec.codecs.video.model import SpatiotemporalVideoModel, VideoConfig
from neuralcodec.codecs.video.options import DEFAULT_GOP, MAX_FRAMES, VideoOptions
from neuralcodec.container import Payload, positive_int_field
from neuralcodec.entropy import SymbolDecoder, SymbolEncoder
from neuralcodec.errors import CorruptFileError, EntropyCodingError, InputError
from neuralcodec.limits import DEFAULT_MAX_FRAMES, Limits
from neuralcodec.media.video import VideoInfo, open_video, open_video_writer
from neuralcodec.metrics import psnr
from neuralcodec.pretrained import LoadedWeights

class VideoCodec:
    """Encode/decode videos with a :class:`SpatiotemporalVideoModel`."""

    name: ClassVar[str] = "video-st"

    def __init__(self, model: SpatiotemporalVideoModel, model_id: str, weights_hash: bytes, device: str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.config = model.config
        self.device = torch.device(device)
        self.model_id = model_id
        self.weights_hash = weights_hash
        self.intra = ImageHyperpriorCodec(model.image, model_id, weights_hash, device)
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

    def _code_frame(self, y: torch.Tensor, previous: torch.Tensor | None, level: float,
                    adaptive_intra: bool) -> tuple[bytes, torch.Tensor, int, bool]:
        """Code a frame's latent as a P-frame given the previous decoded latent, or as an I-frame when
        there is none or (``adaptive_intra``) when that is smaller. Both choices quantize the same latent
        (with other means), so they cost the same distortion on average and the rate decides.
        Returns (stream, ŷ, index CRC, coded as an I-frame)."""
        candidates = []
        if previous is not None:
            encoder = SymbolEncoder()
            y_hat, crc = self.encode_p_frame(y, previous, level, encoder)
            candidates.append((encoder.finish(), y_hat, crc, False))
        if previous is None or adaptive_intra:
            encoder = SymbolEncoder()
            y_hat, crc = self.intra.encode_latent(y, level, encoder)
            candidates.append((encoder.finish(), y_hat, crc, True))
        return min(candidates, key=lambda candidate: len(candidate[0]))

    # ------------------------------------------------------------------ sequences
    @torch.no_grad()
    def encode_frames(self, frames, info: VideoInfo, quality: float | None = None, gop: int = DEFAULT_GOP,
                      progress: bool = False, keep_reconstructions: bool = False,
                      adaptive_intra: bool = True, max_frames: int = DEFAULT_MAX_FRAMES) -> tuple[Payload, dict]:
        """Code an iterable of (H, W, 3) uint8 frames; returns the payload and statistics (per-frame bytes,
        PSNR and reconstruction hashes; the reconstructions themselves with ``keep_reconstructions``).

        The first frame of each group of ``gop`` frames is an I-frame; with ``adaptive_intra`` any other
        frame is coded as an I-frame too when that is smaller than its P-frame (a scene cut, say).
        """
        if gop < 1:
            raise InputError(f"the group of pictures must be at least 1 frame, got {gop}")
        level = self.intra.level_of(quality)
        streams, crcs, psnrs, hashes, reconstructions, extra_intra = [], [], [], [], [], []
        previous: torch.Tensor | None = None
        started = time.perf_counter()
        bar = progress_bar(frames, show=progress, total=info.frames, unit="frame", desc="encoding")
        for index, frame in enumerate(bar):
            if index >= min(max_frames, MAX_FRAMES):
                raise Limits(max_frames=min(max_frames, MAX_FRAMES)).exceeded(
                    "the video's frame count", index + 1, "max_frames")
            x = torch.from_numpy(np.array(frame, dtype=np.float32)).permute(2, 0, 1)[None] / 255.0
            y = self.intra.analyze(x, level)
            predicted = index % gop != 0
            stream, previous, crc, coded_intra = self._code_frame(y, previous if predicted else None, level,
                                                                  adaptive_intra)
            if predicted and coded_intra:
                extra_intra.append(index)
            streams.append(stream)
            crcs.append(crc)
            decoded = to_uint8_image(self.intra.synthesize(previous, level, info.height, info.width))
            psnrs.append(psnr(frame, decoded))
            hashes.append(hashlib.sha256(decoded.tobytes()).hexdigest())
            if keep_reconstructions:
                reconstructions.append(decoded)
            bar.set_postfix(fps=f"{(index + 1) / (time.perf_counter() - started):.2f}")
        if not streams:
            raise InputError("the video has no frames")
        fps = Fraction(info.fps)
        payload = Payload(
            codec=self.name, model_id=self.model_id, weights_hash=self.weights_hash,
            metadata={"height": info.height, "width": info.width, "level": level, "gop": gop,
                      "frames": len(streams), "fps_num": fps.numerator, "fps_den": fps.denominator,
                      "frame_bytes": [len(s) for s in streams], "index_crc": crcs, "intra_frames": extra_intra},
            sections={"frames": b"".join(streams)},
        )
        stats = {"frame_bytes": [len(s) for s in streams], "intra_frames": extra_intra, "psnr": psnrs, "sha256": hashes,
                 "reconstructions": reconstructions, "seconds": time.perf_counter() - started}
        return payload, stats

    @torch.no_grad()
    def decode_frames(self, payload: Payload, limits: Limits = Limits(), progress: bool = False):
        """Yield the decoded (H, W, 3) uint8 frames of ``payload`` one at a time."""
        meta = payload.metadata
        info, gop, level = video_info(payload, limits), positive_int_field(meta, "gop"), meta.get("level")
        level = self.intra.check_level(level)
        lengths, crcs = meta.get("frame_bytes"), meta.get("index_crc")
        if not isinstance(lengths, list) or not isinstance(crcs, list) or len(lengths) != info.frames \
                or len(crcs) != info.frames or any(n < 0 for n in lengths):
            raise CorruptFileError("the file's frame index is missing or inconsistent")
        extra_intra = meta.get("intra_frames", [])  # absent in files of earlier versions
        if not isinstance(extra_intra, list) or not all(isinstance(i, int) and 0 <= i < info.frames for i in extra_intra):
            raise CorruptFileError("the file's list of intra frames is invalid")
        intra_frames = set(extra_intra) | set(range(0, info.frames, gop))
        data = payload.sections.get("frames")
        if data is None or len(data) != sum(lengths):
            raise CorruptFileError("the file's frame data is missing or does not match its index")
        latent_shape = (1, self.config.image.m, padded_side(info.height) // ANALYSIS_STRIDE,
                        padded_side(info.width) // ANALYSIS_STRIDE)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).tolist()
        previous: torch.Tensor | None = None
        for index in progress_bar(range(info.frames), show=progress, unit="frame", desc="decoding"):
            try:
                decoder = SymbolDecoder(data[offsets[index]:offsets[index + 1]])
                if index in intra_frames:
                    previous = self.intra.decode_latent(info.height, info.width, level, decoder, crcs[index])
                else:
                    previous = self.decode_p_frame(latent_shape, previous, level, decoder, crcs[index])
                decoder.assert_exhausted()
            except EntropyCodingError as error:
                raise CorruptFileError(f"frame {index} of the bitstream is corrupt: {error}") from error
            yield to_uint8_image(self.intra.synthesize(previous, level, info.height, info.width))

    # ------------------------------------------------------------------ files
    def encode_file(self, source: Path, options: VideoOptions) -> EncodeResult:
        started = time.perf_counter()
        fps = Fraction(options.fps).limit_denominator(1001) if options.fps else None
        if fps is not None and fps <= 0:
            raise InputError(f"--fps must be positive, got {options.fps}")
        with open_video(source, options.limits, fps) as reader:
            info = reader.info
            payload, stats = self.encode_frames(reader, info, options.quality, options.gop, progress=True,
                                                max_frames=options.limits.max_frames)
        frames = len(stats["frame_bytes"])
        info = VideoInfo(info.width, info.height, info.fps, frames)
        result = {"width": info.width, "height": info.height, "frames": frames, "fps": float(info.fps),
                  "gop": options.gop, "extra_i_frames": len(stats["intra_frames"]),
                  "quality": self.intra.level_of(options.quality) + 1,
                  "psnr_rgb": round(float(np.mean(stats["psnr"])), 3),
                  "encode_fps": round(frames / stats["seconds"], 2),
                  "seconds": round(time.perf_counter() - started, 3)}
        if options.verify:
            decoded = [hashlib.sha256(f.tobytes()).hexdigest() for f in self.decode_frames(payload, options.limits)]
            if decoded != stats["sha256"]:
                raise CorruptFileError("verification failed: decoding does not reproduce the encoder's frames")
            result["verified"] = True
        return EncodeResult(payload, result, pixels=info.width * info.height * frames)

    def decode_file(self, payload: Payload, target: Path, limits: Limits) -> dict:
        started = time.perf_counter()
        info = video_info(payload, limits)
        with open_video_writer(target, info) as writer:
            for frame in self.decode_frames(payload, limits, progress=True):
                writer.write(frame)
        seconds = time.perf_counter() - started
        return {"width": info.width, "height": info.height, "frames": info.frames,
                "decode_fps": round(info.frames / seconds, 2), "seconds": round(seconds, 3)}


def video_model_from_weights(weights: LoadedWeights) -> SpatiotemporalVideoModel:
    """The :class:`SpatiotemporalVideoModel` stored in ``weights`` (fp16 tensors are loaded as float32),
    completed by the shipped image model the file names, if it names one."""
    config = VideoConfig.from_dict(weights.config)
    return restore_model(SpatiotemporalVideoModel(config), with_referenced_image(weights, config.image, "video model"))
