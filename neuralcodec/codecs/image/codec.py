"""The hyperprior image codec as a file codec: entropy coding, determinism, file I/O.

Bitstream of one image (one constriction ANS stream, decode order):
1. hyper-latent symbols ``round(z - median)``, per channel, with the learned factorized tables that
   are stored inside the weights file (never recomputed from floats by a decoder);
2. latent residuals ``round(y - mean)`` with the zero-mean Gaussian tables of the shared scale table:
   all at once with the hyperprior's means and scales, or, for a context model (weights whose config
   has a ``context`` entry), group by group and pass by pass (:mod:`neuralcodec.codecs.image.latent_coding`).

Determinism: the decoder must rebuild exactly the encoder's scale indexes and means. Both come from
the hyper-synthesis, which always runs in float64 on the CPU (one path, whatever device runs the big
transforms); means are then snapped to a 1/``MEAN_GRID`` grid and scales to the table. A mismatch
needs a float64 rounding difference that straddles a grid boundary; the file carries a CRC32 of the
indexes so that even this case fails with a clear error instead of garbage.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import ClassVar, NamedTuple, Protocol

import numpy as np
import torch

from neuralcodec.codecs.base import EncodeResult
from neuralcodec.codecs.common.determinism import check_index_crc
from neuralcodec.codecs.common.inference import inference_form
from neuralcodec.codecs.common.tiling import tiled
from neuralcodec.codecs.common.weights import restore_model
from neuralcodec.codecs.image import compact as image_compact
from neuralcodec.codecs.image.context import CONTEXT_KEY, ImageContextConfig, ImageContextModel
from neuralcodec.codecs.image.latent_coding import (
    ContextLatents,
    HyperpriorLatents,
    LatentCoder,
    crops_latent,
    filled_beyond,
    over_picture,
)
from neuralcodec.codecs.image.header import image_size
from neuralcodec.codecs.image.model import (
    PAD_MULTIPLE,
    HyperpriorConfig,
    ImageHyperprior,
    pad_to_multiple,
    padded_side,
)
from neuralcodec.codecs.image.options import ImageOptions
from neuralcodec.codecs.image.reference import with_referenced_image
from neuralcodec.codecs.image.refinement import lambda_at, refine_latents
from neuralcodec.container import Payload, flag_field
from neuralcodec.entropy import SymbolDecoder, SymbolEncoder
from neuralcodec.errors import CorruptFileError, EntropyCodingError, InputError
from neuralcodec.limits import Limits
from neuralcodec.media.images import DecodedImage, decode_alpha, encode_alpha, read_image, write_image
from neuralcodec.metrics import psnr
from neuralcodec.pretrained import LoadedWeights


HYPER_TILE = 24
"""The hyper-synthesis runs on tiles of this many hyper-latent rows and columns (1536 pixels) when the
image is larger: its float64 buffers stay near 200 MB whatever the image size (a 64-Mpixel header
otherwise needs ~4 GB before the index CRC can reject a crafted file)."""
HYPER_HALO = 3
"""Hyper-latent rows and columns of context around a tile; the hyper-synthesis's receptive field needs 2."""


class HyperLatentCoder(Protocol):
    """What codes a hyper-latent: the model's factorized prior, or a coder that knows more (a video
    codec's previous frame: :mod:`neuralcodec.codecs.video.hyper_latent_context`)."""

    def compress(self, z: torch.Tensor, encoder: SymbolEncoder) -> torch.Tensor: ...

    def decompress(self, shape: tuple[int, ...], decoder: SymbolDecoder) -> torch.Tensor: ...


class CodedLatents(NamedTuple):
    """One coded image: its stream, Σ −log2 p of its symbols, the decoded latent and the index CRC."""

    stream: bytes
    ideal_bits: float
    y_hat: torch.Tensor
    index_crc: int


class ImageCoding(NamedTuple):
    """What :meth:`ImageHyperpriorCodec.compress` returns."""

    payload: Payload
    x_hat: torch.Tensor | None
    """The encoder's reconstruction (what any decoder produces, bit for bit), when asked for."""
    stats: dict


class ImageHyperpriorCodec:
    """Encode/decode images with an :class:`ImageHyperprior` and its stored coding tables."""

    name: ClassVar[str] = "image-hyperprior"

    def __init__(self, model: ImageHyperprior | ImageContextModel, model_id: str, weights_hash: bytes,
                 device: str = "cpu", compact_code: int | None = None) -> None:
        self.model = model.to(device).eval()
        """The whole model (``forward(x, level)`` gives the training-time likelihoods)."""
        self.image: ImageHyperprior = model.image if isinstance(model, ImageContextModel) else model
        """The hyperprior: transforms, hyper-latent, and the latent's hyperprior parameters."""
        self._latents: LatentCoder = (ContextLatents(model) if isinstance(model, ImageContextModel)
                                      else HyperpriorLatents(self.image.gaussian_conditional))
        self.device = torch.device(device)
        self.model_id = model_id
        self.weights_hash = weights_hash
        self.compact_code = compact_code
        """Code of this model in compact files (shipped models that have one), else None."""
        # Inference forms of the transforms (see codecs.common.inference); the entropy-parameter path runs in
        # float64 on the CPU, always.
        self._analysis = inference_form(self.image.g_a)
        self._synthesis = inference_form(self.image.g_s)
        self._hyper_synthesis = inference_form(self.image.h_s).double().cpu()
        self._hyper_gain = copy.deepcopy(self.image.hyper_gain).double().cpu().eval()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_weights(cls, weights: LoadedWeights, device: str = "cpu") -> "ImageHyperpriorCodec":
        return cls(model_from_weights(weights), weights.model_id, weights.weights_hash, device, weights.compact_code)

    @staticmethod
    def export_tensors(model: ImageHyperprior | ImageContextModel) -> dict[str, torch.Tensor]:
        """Tensors of a weights file: the model's parameters and its hyper-latent coding tables."""
        (model.image if isinstance(model, ImageContextModel) else model).entropy_bottleneck.build_tables()
        return model.state_dict()

    # ------------------------------------------------------------------ coding
    @property
    def levels(self) -> int:
        """Number of rate levels: qualities go from 1 to this."""
        return self.image.config.levels

    def level_of(self, quality: float | None) -> float:
        """Map the user's quality (1 = lowest rate ... number of levels) to a gain level."""
        levels = self.image.config.levels
        if quality is None:
            quality = (levels + 1) / 2
        if not 1 <= quality <= levels:
            allowed = "1 (it has a single rate)" if levels == 1 else f"between 1 and {levels}"
            raise InputError(f"quality must be {allowed} for this model, got {quality}")
        return float(quality) - 1.0

    def _hyper_parameters(self, z_hat: torch.Tensor, level: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The hyperprior's (means, scales) of the latent from the decoded hyper-latent, on the float64
        CPU path (snapped by the latent coder)."""
        level_t = torch.tensor([level], dtype=torch.float64)
        with torch.no_grad():
            z = self._hyper_gain.unscale(z_hat.double(), level_t)
            params = tiled(self._hyper_synthesis, z, HYPER_TILE, HYPER_HALO)
            return self.image.entropy_parameters(params)

    @torch.no_grad()
    def analyze(self, x: torch.Tensor, level: float) -> torch.Tensor:
        """The gained latent ``y`` (on the codec's device) of an image tensor (1, 3, H, W) in [0, 1]."""
        if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] != 3:
            raise InputError(f"expected an image tensor of shape (1, 3, H, W), got {tuple(x.shape)}")
        level_t = torch.tensor([level], device=self.device)
        return self.image.latent_gain.scale(self._analysis(pad_to_multiple(x.to(self.device))), level_t)

    @torch.no_grad()
    def hyper_analyze(self, y: torch.Tensor, level: float) -> torch.Tensor:
        """The gained hyper-latent ``z`` of a gained latent ``y``."""
        return self.image.hyper_gain.scale(self.image.h_a(y), torch.tensor([level], device=self.device))

    @torch.no_grad()
    def encode_latent(self, y: torch.Tensor, level: float, encoder: SymbolEncoder, z: torch.Tensor | None = None,
                      picture: tuple[int, int] | None = None,
                      hyper_coder: HyperLatentCoder | None = None) -> tuple[torch.Tensor, int]:
        """Push the hyper-latent (``z``, by default the hyper-analysis of ``y``) and the latent residuals
        of ``y`` to ``encoder``; returns the decoded latent ``ŷ`` (float32, CPU: what the decoder
        rebuilds) and the CRC32 of its scale indexes. With ``picture`` (height, width), only the latent
        over the picture is coded (a cropped-latent coding: see :mod:`~neuralcodec.codecs.image.latent_coding`).
        ``hyper_coder`` codes the hyper-latent instead of the model's factorized prior (its tables)."""
        z = self.hyper_analyze(y, level) if z is None else z
        z_hat = (hyper_coder or self.image.entropy_bottleneck).compress(z, encoder)
        means, scales = self._hyper_parameters(z_hat, level)
        if picture is None:
            return self._latents.compress(y, means, scales, level, encoder)
        inside, index_crc = self._latents.compress(*(over_picture(t, *picture) for t in (y, means, scales)), level,
                                                   encoder)
        return filled_beyond(inside, means), index_crc

    @torch.no_grad()
    def decode_latent(self, height: int, width: int, level: float, decoder: SymbolDecoder,
                      index_crc: object, crc_mask: int = 0xFFFFFFFF, cropped: bool = False,
                      hyper_coder: HyperLatentCoder | None = None) -> torch.Tensor:
        """Inverse of :meth:`encode_latent` for an image of ``height`` x ``width`` (``cropped``: coded with
        ``picture``); CorruptFileError when the rebuilt scale indexes do not match ``index_crc`` (in the
        bits of ``crc_mask``)."""
        z_shape = (1, self.image.config.n, padded_side(height) // PAD_MULTIPLE, padded_side(width) // PAD_MULTIPLE)
        z_hat = (hyper_coder or self.image.entropy_bottleneck).decompress(z_shape, decoder)
        means, scales = self._hyper_parameters(z_hat, level)

        def check(rebuilt: int) -> None:
            check_index_crc(rebuilt, index_crc, crc_mask)

        if not cropped:
            return self._latents.decompress(means, scales, level, decoder, check)
        inside = self._latents.decompress(over_picture(means, height, width), over_picture(scales, height, width),
                                          level, decoder, check)
        return filled_beyond(inside, means)

    @torch.no_grad()
    def compress(self, x: torch.Tensor, quality: float | None = None, reconstruct: bool = True,
                 refine_steps: int = 0, progress: bool = False) -> ImageCoding:
        """Code an image tensor (1, 3, H, W) in [0, 1].

        ``refine_steps`` > 0 optimizes the latents for this image (see :mod:`neuralcodec.codecs.image.refinement`;
        slower encoding, same decoder; ``progress`` shows its progress bar) and keeps them only if
        their coded rate-distortion cost ``bits + λ·255²·SSE`` is lower than that of the plain latents.
        Returns the payload, the encoder's reconstruction (what any decoder produces, bit for bit;
        None when ``reconstruct`` is False and nothing is refined, which skips the synthesis transform)
        and coding statistics.
        """
        if refine_steps < 0:
            raise InputError(f"refine_steps must be >= 0, got {refine_steps}")
        level = self.level_of(quality)
        height, width = x.shape[-2:]
        y = self.analyze(x, level)
        z = self.hyper_analyze(y, level)
        picture = (height, width) if crops_latent(height, width) else None
        coded = self._code_latents(y, z, level, picture)
        x_hat = self.synthesize(coded.y_hat, level, height, width) if reconstruct or refine_steps else None
        stats: dict = {}
        if refine_steps:
            target = x.to(self.device)
            refined_y, refined_z = refine_latents(self.image, target, y, z, level, refine_steps, progress=progress)
            refined = self._code_latents(refined_y, refined_z, level, picture)
            refined_x_hat = self.synthesize(refined.y_hat, level, height, width)
            lmbda = lambda_at(self.image.config.lambdas, level)
            costs = [8 * len(c.stream) + lmbda * 255**2 * (r - x).pow(2).sum().item()
                     for c, r in ((coded, x_hat), (refined, refined_x_hat))]
            stats["refined"] = costs[1] < costs[0]
            if stats["refined"]:
                coded, x_hat = refined, refined_x_hat
        payload = Payload(
            codec=self.name, model_id=self.model_id, weights_hash=self.weights_hash,
            metadata={"height": int(height), "width": int(width), "level": level, "index_crc": coded.index_crc,
                      **({"cropped_latent": True} if picture else {})},
            sections={"bits": coded.stream},
        )
        stats = {"ideal_bits": coded.ideal_bits, "stream_bytes": len(coded.stream), **stats}
        return ImageCoding(payload, x_hat, stats)

    def _code_latents(self, y: torch.Tensor, z: torch.Tensor, level: float,
                      picture: tuple[int, int] | None) -> CodedLatents:
        encoder = SymbolEncoder()
        y_hat, index_crc = self.encode_latent(y, level, encoder, z, picture)
        stream = encoder.finish()
        return CodedLatents(stream, float(encoder.ideal_bits), y_hat, index_crc)

    def check_level(self, level: object) -> float:
        """``level`` read from a file, checked against this model's levels (CorruptFileError otherwise)."""
        if not isinstance(level, float) or not 0 <= level <= self.image.config.levels - 1:
            raise CorruptFileError(f"invalid gain level {level!r} in the file")
        return level

    @torch.no_grad()
    def decompress(self, payload: Payload, limits: Limits = Limits()) -> torch.Tensor:
        """Inverse of :meth:`compress` (regular or compact layout): the reconstruction (1, 3, H, W) in [0, 1]."""
        payload = image_compact.unpack(payload)
        height, width = image_size(payload, limits)
        meta = payload.metadata
        level = self.check_level(meta.get("level"))
        if "bits" not in payload.sections:
            raise CorruptFileError("the file has no 'bits' section")
        try:
            decoder = SymbolDecoder(payload.sections["bits"])
            y_hat = self.decode_latent(height, width, level, decoder, meta.get("index_crc"),
                                       meta.get("index_crc_mask", 0xFFFFFFFF), flag_field(meta, "cropped_latent"))
            decoder.assert_exhausted()
        except (EntropyCodingError, InputError) as error:  # (InputError: a value decoded from the file)
            raise CorruptFileError(f"the image bitstream is corrupt: {error}") from error
        return self.synthesize(y_hat, level, height, width)

    def synthesize(self, y_hat: torch.Tensor, level: float, height: int, width: int) -> torch.Tensor:
        """Pixels from latents, with the inference form of the synthesis transform, whose results do not
        depend on the thread count (so decoder and encoder agree bit for bit)."""
        level_t = torch.tensor([level], device=self.device)
        x_hat = self._synthesis(self.image.latent_gain.unscale(y_hat.to(self.device), level_t))
        return x_hat[..., :height, :width].clamp(0, 1).cpu()

    # ------------------------------------------------------------------ files
    def encode_file(self, source: Path, options: ImageOptions) -> EncodeResult:
        started = time.perf_counter()
        result = self.encode_image(read_image(source, max_pixels=options.limits.max_pixels), options)
        result.stats["seconds"] = round(time.perf_counter() - started, 3)
        return result

    def encode_image(self, image: DecodedImage, options: ImageOptions) -> EncodeResult:
        """Compress an image already read (from a file, or given in memory): the payload as written."""
        started = time.perf_counter()
        x = torch.from_numpy(image.rgb).permute(2, 0, 1)[None].float() / 255.0
        payload, x_hat, stats = self.compress(x, options.quality, refine_steps=options.refine_steps, progress=True)
        payload.metadata["grayscale"] = image.grayscale
        if image.alpha is not None:
            payload.sections["alpha"] = encode_alpha(image.alpha)
        result = {"width": image.width, "height": image.height, "quality": self.level_of(options.quality) + 1,
                  "seconds": round(time.perf_counter() - started, 3), **stats}
        if options.verify:
            decoded = self.decompress(payload, options.limits)
            if not torch.equal(decoded, x_hat):
                raise CorruptFileError("verification failed: decoding does not reproduce the encoder's reconstruction")
            result["psnr_rgb"] = round(psnr(image.rgb, to_uint8_image(decoded)), 3)
        payload, compact_code = self.packed(payload)
        return EncodeResult(payload, result, pixels=image.width * image.height, compact_code=compact_code)

    def packed(self, payload: Payload) -> tuple[Payload, int | None]:
        """``payload`` in the layout it is written in, and the compact code to write it with: the compact
        layout when this model has a compact code and the image fits it (no alpha...), else unchanged."""
        compact = image_compact.pack(payload) if self.compact_code is not None else None
        return (payload, None) if compact is None else (compact, self.compact_code)

    def decode_file(self, payload: Payload, target: Path, limits: Limits) -> dict:
        started = time.perf_counter()
        image = self.decode_image(payload, limits)
        write_image(target, image)
        return {"width": image.width, "height": image.height, "seconds": round(time.perf_counter() - started, 3)}

    def decode_image(self, payload: Payload, limits: Limits = Limits()) -> DecodedImage:
        """Inverse of :meth:`encode_image`: 8-bit colour with the grayscale flag and alpha plane of the input."""
        payload = image_compact.unpack(payload)
        rgb = to_uint8_image(self.decompress(payload, limits))
        height, width = rgb.shape[:2]
        alpha = decode_alpha(payload.sections["alpha"], height, width) if "alpha" in payload.sections else None
        return DecodedImage(rgb=rgb, grayscale=bool(payload.metadata.get("grayscale", False)), alpha=alpha)


def model_from_weights(weights: LoadedWeights) -> ImageHyperprior | ImageContextModel:
    """The model stored in ``weights`` (fp16 tensors are loaded as float32): an :class:`ImageHyperprior`,
    or an :class:`ImageContextModel` when the config has a ``context`` entry (completed by the shipped
    hyperprior the file names, if it names one)."""
    if CONTEXT_KEY in weights.config:
        config = ImageContextConfig.from_dict(weights.config)
        return restore_model(ImageContextModel(config), with_referenced_image(weights, config.image, "context model"))
    return restore_model(ImageHyperprior(HyperpriorConfig.from_dict(weights.config)), weights)


def to_uint8_image(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> (H, W, 3) uint8."""
    return (x[0].permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
