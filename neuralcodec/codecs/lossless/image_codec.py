"""The lossless image codec (``lossless-image``): 8-bit grey, grey+alpha, RGB and RGBA images of any size.

The image is split into groups of planes (RGB: one colour group G, R-G, B-G; grey and alpha: one plane
each), and each group is coded along the wavefront with its circuit (``image_coding``), colour first,
alpha last, with the context scheme the model was trained with (config ``contexts``, ``planes.SCHEMES``;
"gradients" for the first model, whose config predates the key). Decoding writes an image file with
exactly the input's pixels (PNG, or the other lossless formats by the target's suffix).

Tiling: the image is cut into ``tile`` x ``tile`` tiles (1024), coded independently (a tile's first row and
column see no neighbours outside it), side by side in groups of at most a megapixel: only one group's
canvases are held, and a step of the wavefront is a batch over the whole group. (Smaller tiles barely
speed coding up, which is bound by the per-pixel products, and cost rate: +0.004 bpsp on Kodak at 256.)

File: metadata ``width``, ``height``, ``mode`` (L, LA, RGB, RGBA), ``tile``, ``chunk`` (symbols per stream
chunk) and ``chunks`` (each chunk's byte length); section ``stream`` (the chunks one after another).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

from neuralcodec.codecs.base import EncodeResult
from neuralcodec.codecs.lossless.coding import CodingTables
from neuralcodec.codecs.lossless.hclt import HCLTConfig, HiddenChowLiuTree, circuit_with_probabilities
from neuralcodec.codecs.lossless.image_coding import CHUNK_SYMBOLS, ChunkDecoder, ChunkEncoder, code_planes
from neuralcodec.codecs.lossless.image_header import GROUP_PIXELS, MODES, TILE, declared_size
from neuralcodec.codecs.lossless.image_model import GROUPS, chain_tree
from neuralcodec.codecs.lossless.options import LosslessOptions
from neuralcodec.codecs.lossless.planes import LEFT, RIGHT, SCHEMES, TOP, ContextScheme, canvas, coding_canvas
from neuralcodec.codecs.lossless.planes import decorrelated, recombined
from neuralcodec.container import Payload
from neuralcodec.errors import CorruptFileError, InputError
from neuralcodec.fileio import atomic_output
from neuralcodec.limits import Limits
from neuralcodec.media.images import LOSSLESS_SUFFIXES, opened_image
from neuralcodec.pretrained import LoadedWeights

_CONVERTED = {"1": "L", "P": "RGB", "PA": "RGBA"}
"""Modes stored as another mode with the same pixels (palette images with transparency become RGBA)."""


def channel_groups(channels: int) -> list[tuple[str, slice]]:
    """(circuit, channel slice) of each plane group of an image with ``channels`` channels, in coding order."""
    colour = [("colour", slice(0, 3))] if channels >= 3 else [("grey", slice(0, 1))]
    return colour + ([("grey", slice(channels - 1, channels))] if channels in (2, 4) else [])


def tile_groups(height: int, width: int, tile: int) -> list[np.ndarray]:
    """The image's tiles (top, left, height, width) in raster order, in groups of consecutive tiles of at
    most ``GROUP_PIXELS`` pixels together (at least one tile): a group's tiles are coded side by side,
    groups one after another."""
    tiles = [(top, left, min(tile, height - top), min(tile, width - left))
             for top in range(0, height, tile) for left in range(0, width, tile)]
    groups: list[list[tuple[int, int, int, int]]] = [[]]
    pixels = 0
    for t in tiles:
        if groups[-1] and pixels + t[2] * t[3] > GROUP_PIXELS:
            groups.append([])
            pixels = 0
        groups[-1].append(t)
        pixels += t[2] * t[3]
    return [np.array(group) for group in groups]


def _board(group: np.ndarray, channels: slice, scheme: ContextScheme) -> np.ndarray:
    """Empty canvases for the tiles of ``group`` and the planes of ``channels`` (with their error planes)."""
    return canvas(len(group), scheme.channels(channels.stop - channels.start), int(group[:, 2].max()),
                  int(group[:, 3].max()))


class LosslessImageCodec:
    """Encode/decode one 8-bit image of any size exactly, with the circuits of a weights file."""

    name: ClassVar[str] = "lossless-image"

    def __init__(self, tables: dict[str, CodingTables], scheme: ContextScheme, model_id: str,
                 weights_hash: bytes) -> None:
        self.tables = tables
        self.scheme = scheme
        self.model_id = model_id
        self.weights_hash = weights_hash

    @classmethod
    def from_weights(cls, weights: LoadedWeights, device: str = "cpu") -> "LosslessImageCodec":
        """Build from a weights file of ``image_training.export_lossless_image`` (coding runs on the CPU)."""
        t = weights.tensors
        tables = {}
        for name, planes in GROUPS.items():
            try:
                parts = [t[f"{name}.{part}"] for part in ("root", "transition", "emission")]
            except KeyError as missing:
                raise InputError(f"weights of {weights.model_id!r} lack tensor {missing}") from None
            tables[name] = CodingTables.from_probabilities(*parts, chain_tree(2 * planes))
        scheme = weights.config.get("contexts", "gradients")  # (the first model's config has no "contexts")
        if scheme not in SCHEMES:
            raise InputError(f"weights of {weights.model_id!r} name an unknown context scheme {scheme!r}")
        return cls(tables, SCHEMES[scheme], weights.model_id, weights.weights_hash)

    def likelihood_model(self, group: str) -> HiddenChowLiuTree:
        """The circuit of ``group`` ("colour", "grey") with exactly the shipped probabilities."""
        t = self.tables[group]
        config = HCLTConfig(height=1, width=t.tree.size, hidden=len(t.root))
        return circuit_with_probabilities(config, t.tree, t.root, t.transition, t.emission)

    # ------------------------------------------------------------------ arrays
    def compress(self, image: np.ndarray, tile: int = TILE, chunk_symbols: int = CHUNK_SYMBOLS
                 ) -> tuple[list[bytes], float]:
        """(stream chunks, ideal bits) of an (H, W, C) uint8 image with C in 1..4, in ``tile``-pixel tiles."""
        a = np.asarray(image)
        if a.dtype != np.uint8 or a.ndim != 3 or not 1 <= a.shape[2] <= 4 or min(a.shape[:2]) < 1:
            raise InputError(f"expected an (H, W, 1..4) uint8 image, got {a.dtype} {a.shape}")
        encoder = ChunkEncoder(chunk_symbols)
        for group in tile_groups(a.shape[0], a.shape[1], tile):
            for name, channels in channel_groups(a.shape[2]):
                board = _board(group, channels, self.scheme)
                for k, (top, left, height, width) in enumerate(group):
                    tile_pixels = decorrelated(a[top : top + height, left : left + width, channels])
                    board[k, :, : height + TOP + 1, : width + LEFT + RIGHT] = coding_canvas(tile_pixels, self.scheme)
                code_planes(self.tables[name], self.scheme, board, group[:, 2:], encoder)
        chunks = encoder.finish()
        return chunks, encoder.ideal_bits

    def decompress(self, chunks: list[bytes], height: int, width: int, channels: int, tile: int = TILE,
                   chunk_symbols: int = CHUNK_SYMBOLS) -> np.ndarray:
        """The (H, W, C) uint8 image coded in ``chunks``."""
        decoder = ChunkDecoder(chunks, chunk_symbols)
        out = np.empty((height, width, channels), dtype=np.uint8)
        for group in tile_groups(height, width, tile):
            for name, part in channel_groups(channels):
                board = _board(group, part, self.scheme)
                code_planes(self.tables[name], self.scheme, board, group[:, 2:], decoder)
                for k, (top, left, rows, cols) in enumerate(group):
                    planes = board[k, : part.stop - part.start, TOP : TOP + rows, LEFT : LEFT + cols]
                    out[top : top + rows, left : left + cols, part] = recombined(planes)
        decoder.finish()
        return out

    # ------------------------------------------------------------------ files
    def encode_file(self, source: Path, options: LosslessOptions) -> EncodeResult:
        """Encode one 8-bit image file (grey, grey+alpha, RGB, RGBA, palette)."""
        started = time.perf_counter()
        image, mode = read_lossless_image(source, options.limits)
        chunks, ideal_bits = self.compress(image)
        height, width, channels = image.shape
        metadata = {"width": width, "height": height, "mode": mode, "tile": TILE, "chunk": CHUNK_SYMBOLS,
                    "chunks": [len(c) for c in chunks]}
        payload = Payload(self.name, self.model_id, self.weights_hash, metadata, {"stream": b"".join(chunks)})
        stats: dict = {"width": width, "height": height, "mode": mode, "stream_bytes": sum(map(len, chunks)),
                       "ideal_bpsp": round(ideal_bits / image.size, 5),
                       "seconds": round(time.perf_counter() - started, 3)}
        if options.verify:
            if not np.array_equal(self.decompress(chunks, height, width, channels), image):
                raise CorruptFileError("verification failed: the decoded image differs from the input")
            stats["verified"] = "exact"
        return EncodeResult(payload, stats, pixels=height * width)

    def decode_file(self, payload: Payload, target: Path, limits: Limits) -> dict[str, float | int | str]:
        """Decode to an image file with the input's pixels (PNG, or BMP/TIFF/PPM by ``target``'s suffix)."""
        started = time.perf_counter()
        height, width, mode = declared_size(payload, limits)
        suffix = target.suffix.lower()
        if suffix not in LOSSLESS_SUFFIXES:
            raise InputError(f"decode a lossless image to a lossless format ({', '.join(LOSSLESS_SUFFIXES)}), "
                             f"not {target.name}")
        chunks, stream = [], payload.sections["stream"]
        offset = 0
        for length in payload.metadata["chunks"]:
            chunks.append(stream[offset : offset + length])
            offset += length
        image = self.decompress(chunks, height, width, len(mode), payload.metadata["tile"], payload.metadata["chunk"])
        with atomic_output(target) as temporary:
            Image.fromarray(image.squeeze(-1) if mode == "L" else image, mode=mode).save(
                temporary, format=Image.registered_extensions()[suffix])
        return {"width": width, "height": height, "mode": mode, "seconds": round(time.perf_counter() - started, 3)}


def read_lossless_image(source: Path, limits: Limits) -> tuple[np.ndarray, str]:
    """(pixels (H, W, C) uint8, mode L/LA/RGB/RGBA) of an 8-bit image file, exactly as stored (no EXIF
    rotation); InputError for 16-bit, float, CMYK and other modes that have no exact 8-bit form here."""
    with opened_image(source, limits.max_pixels) as image:
        mode = image.mode
        if mode == "P" and "transparency" in image.info:
            mode = "PA"
        if mode in _CONVERTED:
            image = image.convert(_CONVERTED[mode])
        if image.mode not in MODES:
            why = "16-bit and float values do not fit" if image.mode.startswith(("I", "F")) else "convert it first"
            raise InputError(f"{source} is a {image.mode} image; the lossless image codec codes 8-bit grey, "
                             f"grey+alpha, RGB, RGBA and palette images only ({why})")
        pixels = np.asarray(image, dtype=np.uint8)
    return pixels.reshape(pixels.shape[0], pixels.shape[1], len(image.mode)), image.mode
