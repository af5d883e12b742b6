"""What every video codec of the family shares: frames streamed in and out, one ANS stream per frame,
the frame index of the file, and the file-level encode/decode.

A codec says how one frame is coded given its reference state (:meth:`SequenceCodec.code_frame`) and
decoded (:meth:`SequenceCodec.decode_frame`); the reference state is whatever the next frame is
predicted from (a latent for ``video-st``, the decoded pixels for ``video-mc``), None at an I-frame.

File metadata: ``height``, ``width``, ``level``, ``gop``, ``frames``, ``fps_num``/``fps_den``,
``frame_bytes`` (list), ``index_crc`` (list), ``intra_frames`` (indexes of frames coded as I-frames
inside a group of pictures), when the I-frames are coded at another gain level than the P-frames,
``intra_level``, the flags ``cropped_latent``, ``overlapped_motion``, ``filtered_prediction``,
``temporal_motion`` and ``temporal_hyper_latent`` when frames are coded that way, and ``intra_context``
(a model id and hash) when I-frames are coded with an image context model
(:mod:`neuralcodec.codecs.video.context_models`); one section ``frames`` holding the streams back to back.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import numpy as np

from neuralcodec.codecs.base import EncodeResult, progress_bar
from neuralcodec.codecs.image.codec import ImageHyperpriorCodec
from neuralcodec.codecs.image.latent_coding import crops_latent
from neuralcodec.codecs.video.header import video_info
from neuralcodec.codecs.video.options import DEFAULT_GOP, MAX_FRAMES, VideoOptions
from neuralcodec.container import Payload, flag_field, positive_int_field
from neuralcodec.entropy import SymbolDecoder
from neuralcodec.errors import CorruptFileError, EntropyCodingError, InputError
from neuralcodec.limits import DEFAULT_MAX_FRAMES, Limits
from neuralcodec.media.video import VideoInfo, open_video, open_video_writer
from neuralcodec.metrics import psnr


@dataclass(frozen=True)
class FrameSettings:
    """How a file's frames are coded: the gain levels ``predicted`` for P-frames (the file's ``level``) and
    ``intra`` for I-frames (its ``intra_level``; by default the same), whether latents are coded only
    over the picture (its ``cropped_latent``; see :mod:`neuralcodec.codecs.image.latent_coding`) and
    whether block motion is overlapped, the prediction filtered, and motion and the residual hyper-latent
    coded with the previous P-frame's as context (its ``overlapped_motion``, ``filtered_prediction``,
    ``temporal_motion`` and ``temporal_hyper_latent``; codecs that predict from pixels) and which image
    context model codes I-frames (its ``intra_context`` entry; None: the video model's own hyperprior)."""

    predicted: float
    intra: float
    cropped_latent: bool = False
    overlapped_motion: bool = False
    filtered_prediction: bool = False
    intra_context: str | None = None
    temporal_motion: bool = False
    temporal_hyper_latent: bool = False


FILE_FLAGS = (("cropped_latent", "crops_latents"), ("overlapped_motion", "overlaps_motion"),
              ("filtered_prediction", "filters_prediction"), ("temporal_motion", "codes_motion_temporally"),
              ("temporal_hyper_latent", "codes_hyper_latent_temporally"))
"""The boolean file flags (the :class:`FrameSettings` fields of the same names), in header order, each with
the codec switch that lets the encoder write it and the decoder read it."""


@dataclass
class FrameCoding:
    """One coded frame: its stream, the reference state it leaves, its decoded pixels, its scale-index
    CRC, and whether it is an I-frame."""

    stream: bytes
    reference: object
    decoded: np.ndarray
    index_crc: int
    intra: bool


@dataclass(frozen=True)
class FrameIndex:
    """Where each frame's stream lies in the ``frames`` section, its CRC, and which frames are I-frames."""

    offsets: list[int]
    crcs: list
    intra: frozenset[int]


def frame_index(payload: Payload, frames: int, gop: int) -> FrameIndex:
    """The checked frame index of ``payload`` (CorruptFileError when inconsistent)."""
    meta = payload.metadata
    lengths, crcs = meta.get("frame_bytes"), meta.get("index_crc")
    if not isinstance(lengths, list) or not isinstance(crcs, list) or len(lengths) != frames \
            or len(crcs) != frames or any(not isinstance(n, int) or n < 0 for n in lengths):
        raise CorruptFileError("the file's frame index is missing or inconsistent")
    extra_intra = meta.get("intra_frames", [])  # absent in files of earlier versions
    if not isinstance(extra_intra, list) or not all(isinstance(i, int) and 0 <= i < frames for i in extra_intra):
        raise CorruptFileError("the file's list of intra frames is invalid")
    data = payload.sections.get("frames")
    if data is None or len(data) != sum(lengths):
        raise CorruptFileError("the file's frame data is missing or does not match its index")
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).tolist()
    return FrameIndex(offsets, crcs, frozenset(extra_intra) | frozenset(range(0, frames, gop)))


class SequenceCodec:
    """Base of the video codecs: sequence and file coding around per-frame :meth:`code_frame` and
    :meth:`decode_frame`."""

    name: ClassVar[str]
    intra_level_boost: ClassVar[float] = 0.0
    """Gain levels the encoder adds for I-frames (capped at the top level): a better reference makes the
    P-frames that follow it cheaper."""
    crops_latents: ClassVar[bool] = False
    """Whether the encoder codes cropped latents when the frame size is not the transforms' multiple."""
    overlaps_motion: ClassVar[bool] = False
    """Whether the encoder predicts with overlapped block motion compensation."""
    filters_prediction: ClassVar[bool] = False
    """Whether the encoder filters the prediction (:mod:`~neuralcodec.codecs.video.prediction_filter`)."""
    codes_motion_temporally: ClassVar[bool] = False
    """Whether the encoder codes a P-frame's motion field with the previous P-frame's as context."""
    codes_hyper_latent_temporally: ClassVar[bool] = False
    """Whether the encoder codes a P-frame's residual hyper-latent with the previous P-frame's as context."""

    def __init__(self, model_id: str, weights_hash: bytes, intra: ImageHyperpriorCodec) -> None:
        self.model_id = model_id
        self.weights_hash = weights_hash
        self.intra = intra
        """The I-frame codec (its levels are the video codec's)."""
        self.intra_context: str | None = None
        """The ``intra_context`` entry naming the context model the encoder codes I-frames with (None:
        ``intra``)."""

    def checked_intra_context(self, entry: object) -> str | None:
        """A file's ``intra_context`` entry once the codec can decode with the model it names (loaded); this
        codec codes I-frames with its own model only: CorruptFileError for any entry."""
        if entry is not None:
            raise CorruptFileError(f"{self.name} files code I-frames with the video model itself")
        return None

    # ------------------------------------------------------------------ one frame
    def code_frame(self, frame: np.ndarray, reference: object | None, settings: FrameSettings, adaptive_intra: bool,
                   last_intra_bytes: int) -> FrameCoding:
        """Code the (H, W, 3) uint8 ``frame`` given the previous frame's reference state (None: as an
        I-frame); with ``adaptive_intra`` an I-frame may be chosen anyway (``last_intra_bytes``: the size
        of the last I-frame coded)."""
        raise NotImplementedError

    def decode_frame(self, decoder: SymbolDecoder, reference: object | None, height: int, width: int,
                     settings: FrameSettings, index_crc: object) -> tuple[object, np.ndarray]:
        """Inverse of :meth:`code_frame`: (reference state, decoded (H, W, 3) uint8 frame)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ sequences
    def encode_frames(self, frames, info: VideoInfo, quality: float | None = None, gop: int = DEFAULT_GOP,
                      progress: bool = False, keep_reconstructions: bool = False,
                      adaptive_intra: bool = True, max_frames: int = DEFAULT_MAX_FRAMES) -> tuple[Payload, dict]:
        """Code an iterable of (H, W, 3) uint8 frames; returns the payload and statistics (per-frame bytes,
        PSNR and reconstruction hashes; the reconstructions themselves with ``keep_reconstructions``).

        The first frame of each group of ``gop`` frames is an I-frame; with ``adaptive_intra`` any other
        frame may be coded as an I-frame too (a scene cut, say), as :meth:`code_frame` decides.
        """
        if gop < 1:
            raise InputError(f"the group of pictures must be at least 1 frame, got {gop}")
        level = self.intra.level_of(quality)
        flags = {flag: getattr(self, switch) for flag, switch in FILE_FLAGS}
        flags["cropped_latent"] = flags["cropped_latent"] and crops_latent(info.height, info.width)
        settings = FrameSettings(level, min(level + self.intra_level_boost, self.intra.levels - 1.0),
                                 intra_context=self.intra_context, **flags)
        codings: list[FrameCoding] = []
        psnrs, hashes, reconstructions = [], [], []
        reference: object | None = None
        last_intra_bytes = 0
        started = time.perf_counter()
        bar = progress_bar(frames, show=progress, total=info.frames, unit="frame", desc="encoding")
        for index, frame in enumerate(bar):
            if index >= min(max_frames, MAX_FRAMES):
                raise Limits(max_frames=min(max_frames, MAX_FRAMES)).exceeded(
                    "the video's frame count", index + 1, "max_frames")
            frame = np.ascontiguousarray(frame, dtype=np.uint8)
            coding = self.code_frame(frame, reference if index % gop else None, settings, adaptive_intra,
                                     last_intra_bytes)
            if coding.intra:
                last_intra_bytes = len(coding.stream)
            codings.append(coding)
            reference = coding.reference
            psnrs.append(psnr(frame, coding.decoded))
            hashes.append(hashlib.sha256(coding.decoded.tobytes()).hexdigest())
            if keep_reconstructions:
                reconstructions.append(coding.decoded)
            bar.set_postfix(fps=f"{(index + 1) / (time.perf_counter() - started):.2f}")
        if not codings:
            raise InputError("the video has no frames")
        extra_intra = [i for i, c in enumerate(codings) if c.intra and i % gop]
        fps = Fraction(info.fps)
        sizes = [len(c.stream) for c in codings]
        payload = Payload(
            codec=self.name, model_id=self.model_id, weights_hash=self.weights_hash,
            metadata={"height": info.height, "width": info.width, "level": level, "gop": gop,
                      "frames": len(codings), "fps_num": fps.numerator, "fps_den": fps.denominator,
                      "frame_bytes": sizes, "index_crc": [c.index_crc for c in codings],
                      "intra_frames": extra_intra,
                      **({"intra_level": settings.intra} if settings.intra != level else {}),
                      **{flag: True for flag, _ in FILE_FLAGS if getattr(settings, flag)},
                      **({"intra_context": settings.intra_context} if settings.intra_context else {})},
            sections={"frames": b"".join(c.stream for c in codings)},
        )
        stats = {"frame_bytes": sizes, "intra_frames": extra_intra, "psnr": psnrs, "sha256": hashes,
                 "reconstructions": reconstructions, "seconds": time.perf_counter() - started}
        return payload, stats

    def decode_frames(self, payload: Payload, limits: Limits = Limits(), progress: bool = False):
        """Yield the decoded (H, W, 3) uint8 frames of ``payload`` one at a time."""
        meta = payload.metadata
        info, gop = video_info(payload, limits), positive_int_field(meta, "gop")
        level = self.intra.check_level(meta.get("level"))
        flags = {flag: getattr(self, switch) and flag_field(meta, flag) for flag, switch in FILE_FLAGS}
        settings = FrameSettings(level, self.intra.check_level(meta.get("intra_level", level)),
                                 intra_context=self.checked_intra_context(meta.get("intra_context")), **flags)
        index = frame_index(payload, info.frames, gop)
        data = payload.sections["frames"]
        reference: object | None = None
        for number in progress_bar(range(info.frames), show=progress, unit="frame", desc="decoding"):
            try:
                decoder = SymbolDecoder(data[index.offsets[number]:index.offsets[number + 1]])
                reference, frame = self.decode_frame(decoder, None if number in index.intra else reference,
                                                     info.height, info.width, settings, index.crcs[number])
                decoder.assert_exhausted()
            except EntropyCodingError as error:
                raise CorruptFileError(f"frame {number} of the bitstream is corrupt: {error}") from error
            yield frame

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
