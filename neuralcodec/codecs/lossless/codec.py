"""The lossless probabilistic-circuit codec (``lossless-pc``): fixed-size 8-bit grayscale images, exactly.

Inputs: one image file (PNG, BMP, TIFF, ... in 8-bit grayscale), an IDX file of images (MNIST format,
optionally .gz) or a folder of image files, all of the model's size. Many images go into one file and
one ANS stream, coded in chunks of ``CHUNK`` images, pixel by pixel in the tree's depth-first order
with the exact HCLT conditionals (``hclt_coding``). A single image from a shipped model with a compact
code goes into a 5-byte-header compact file (see ``container.write_compact``).

Decoding writes an image file (one image), an IDX file (target named ``*-ubyte``, ``*.idx``, optionally
``.gz``) or a folder of PNGs named as the inputs were.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from neuralcodec.codecs.base import EncodeResult, progress_bar
from neuralcodec.codecs.lossless.chow_liu import RootedTree
from neuralcodec.codecs.lossless.coding import CodingTables, code_pixels
from neuralcodec.codecs.lossless.header import image_count
from neuralcodec.codecs.lossless.hclt import HCLTConfig, HiddenChowLiuTree, circuit_with_probabilities
from neuralcodec.codecs.lossless.options import LosslessOptions
from neuralcodec.container import Payload
from neuralcodec.entropy import SymbolDecoder, SymbolEncoder
from neuralcodec.errors import CorruptFileError, InputError
from neuralcodec.fileio import atomic_output
from neuralcodec.limits import Limits
from neuralcodec.media.idx import is_idx_path, read_idx, write_idx
from neuralcodec.media.images import LOSSLESS_SUFFIXES, image_files, read_gray_image
from neuralcodec.pretrained import LoadedWeights

CHUNK = 4096
"""Images coded together per depth-first pass (bounds memory; the stream order depends on it)."""
_NAME_SEPARATOR = "\n"
MAX_NAME_BYTES = 255
"""Longest image file name kept in a file (the usual file-system limit)."""


class LosslessCircuitCodec:
    """Encode/decode batches of fixed-size grayscale images with an HCLT."""

    name: ClassVar[str] = "lossless-pc"

    def __init__(self, tables: CodingTables, config: HCLTConfig, model_id: str, weights_hash: bytes,
                 compact_code: int | None = None) -> None:
        self.tables = tables
        self.config = config
        self.model_id = model_id
        self.weights_hash = weights_hash
        self.compact_code = compact_code
        """Code of this model in compact files (shipped models that have one), else None."""

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_weights(cls, weights: LoadedWeights, device: str = "cpu") -> "LosslessCircuitCodec":
        """Build from a weights file written by :func:`export_tensors` (coding always runs on the CPU)."""
        config = HCLTConfig.from_dict(weights.config)
        t = weights.tensors
        try:
            tree = RootedTree(order=t["order"].numpy().astype(np.int64), parent=t["parent"].numpy().astype(np.int64))
            tables = CodingTables.from_probabilities(t["root"], t["transition"], t["emission"], tree)
        except KeyError as missing:
            raise InputError(f"weights of {weights.model_id!r} lack tensor {missing}") from None
        if tables.categories != config.categories or tree.size != config.pixels:
            raise InputError(f"weights of {weights.model_id!r} do not match their config {config}")
        return cls(tables, config, weights.model_id, weights.weights_hash, weights.compact_code)

    @staticmethod
    def export_tensors(model: HiddenChowLiuTree) -> dict[str, torch.Tensor]:
        """Tensors of a weights file: fp16 probabilities and the tree (what decoders use, exactly)."""
        root, transition, emission = (p.detach().cpu().half() for p in model.probabilities())
        return {"root": root, "transition": transition, "emission": emission,
                "order": model.order.cpu().int(), "parent": model.parent.cpu().int()}

    def likelihood_model(self) -> HiddenChowLiuTree:
        """The HCLT with exactly the shipped (fp16) probabilities, for measuring its likelihood."""
        t = self.tables
        return circuit_with_probabilities(self.config, t.tree, t.root, t.transition, t.emission)

    # ------------------------------------------------------------------ coding
    def compress(self, images: np.ndarray, progress: bool = False) -> tuple[bytes, float]:
        """(ANS stream, ideal bits under the integer pmfs) of ``images`` (N, height, width) uint8;
        ``progress`` shows a progress bar (on stderr, when it is a terminal)."""
        flat = self._checked(images)
        encoder = SymbolEncoder()
        with self._bar(len(flat), "encoding", progress) as bar:
            for start in range(0, len(flat), CHUNK):
                block = flat[start : start + CHUNK]

                def known(pixel: int, pmf: np.ndarray, rows: np.ndarray, block: np.ndarray = block) -> np.ndarray:
                    encoder.encode_categorical(block[:, pixel], pmf, rows)
                    bar.update(len(block) / self.config.pixels)
                    return block[:, pixel]

                code_pixels(self.tables, len(block), known)
        return encoder.finish(), encoder.ideal_bits

    def decompress(self, stream: bytes, count: int, progress: bool = False, task: str = "decoding") -> np.ndarray:
        """The ``count`` images (N, height, width) uint8 coded in ``stream`` (``progress``: a bar named ``task``).

        A full chunk that leaves the decoder where it found it (no data read, same state: the coder's
        zero-cost end, e.g. a run of blank images) is followed by identical chunks only, which are copied:
        the work is bounded by the stream's length, not by the count a file declares.
        """
        decoder = SymbolDecoder(stream)
        out = np.empty((count, self.config.pixels), dtype=np.uint8)
        with self._bar(count, task, progress) as bar:
            start = 0
            while start < count:
                block = out[start : start + CHUNK]
                before = decoder.position()

                def decoded(pixel: int, pmf: np.ndarray, rows: np.ndarray, block: np.ndarray = block) -> np.ndarray:
                    block[:, pixel] = decoder.decode_categorical(pmf, rows)
                    bar.update(len(block) / self.config.pixels)
                    return block[:, pixel]

                code_pixels(self.tables, len(block), decoded)
                start += len(block)
                if len(block) == CHUNK and decoder.position() == before:
                    repeats = (count - start) // CHUNK
                    out[start : start + repeats * CHUNK] = np.tile(block, (repeats, 1))
                    bar.update(repeats * CHUNK)
                    start += repeats * CHUNK
        decoder.assert_exhausted()
        return out.reshape(count, self.config.height, self.config.width)

    @staticmethod
    def _bar(images: int, task: str, show: bool) -> Any:
        """A bar counting images (advanced by a fraction of an image per pixel coded across a chunk)."""
        return progress_bar(total=images, show=show, desc=task, unit="image", unit_scale=True)

    def _checked(self, images: np.ndarray) -> np.ndarray:
        a = np.asarray(images)
        h, w = self.config.height, self.config.width
        if a.dtype != np.uint8:
            raise InputError(f"images must be 8-bit (uint8), got {a.dtype}")
        if a.ndim != 3 or a.shape[1:] != (h, w):
            raise InputError(f"model {self.model_id!r} codes {w}x{h} images, got an array of shape {a.shape} "
                             f"(train one for your size with `codec train lossless-pc`)")
        if len(a) == 0:
            raise InputError("no images to encode")
        if self.config.categories < 256 and a.max() >= self.config.categories:
            raise InputError(f"model {self.model_id!r} codes values below {self.config.categories}")
        return a.reshape(len(a), h * w)

    # ------------------------------------------------------------------ files
    def encode_file(self, source: Path, options: LosslessOptions) -> EncodeResult:
        """Encode an image, an IDX file or a folder of images."""
        started = time.perf_counter()
        images, names, single = read_images(source, options.limits)
        stream, ideal_bits = self.compress(images, progress=True)
        metadata: dict = {} if single else {"count": len(images), "chunk": CHUNK}
        sections = {"stream": stream}
        if names is not None:
            sections["names"] = zlib.compress(_NAME_SEPARATOR.join(names).encode("utf-8"), 9)
        payload = Payload(self.name, self.model_id, self.weights_hash, metadata, sections)
        stats = {"images": len(images), "width": self.config.width, "height": self.config.height,
                 "stream_bytes": len(stream), "ideal_bpd": round(ideal_bits / images.size, 5),
                 "seconds": round(time.perf_counter() - started, 3)}
        if options.verify:
            if not np.array_equal(self.decompress(stream, len(images), progress=True, task="verifying"), images):
                raise CorruptFileError("verification failed: decoded images differ from the input")
            stats["verified"] = "exact"
        return EncodeResult(payload, stats, pixels=images.size, compact_code=self.compact_code if single else None)

    def decode_file(self, payload: Payload, target: Path, limits: Limits) -> dict[str, float | int | str]:
        """Decode to an image (one image), an IDX file or a folder of PNGs."""
        started = time.perf_counter()
        count, chunk = image_count(payload), payload.metadata.get("chunk", CHUNK)
        if count * self.config.pixels > limits.max_pixels:
            raise limits.exceeded(f"the file's {count} images of {self.config.pixels} pixels", count * self.config.pixels,
                                  "max_pixels")
        if chunk != CHUNK:
            raise CorruptFileError(f"the file was coded in chunks of {chunk!r} images, this codec uses {CHUNK}")
        if "stream" not in payload.sections:
            raise CorruptFileError("the file has no 'stream' section")
        names = _names(payload, count)
        images = self.decompress(payload.sections["stream"], count, progress=True)
        write_images(target, images, names)
        return {"images": count, "width": self.config.width, "height": self.config.height,
                "seconds": round(time.perf_counter() - started, 3)}


def _names(payload: Payload, count: int) -> list[str] | None:
    if "names" not in payload.sections:
        return None
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(payload.sections["names"], count * (MAX_NAME_BYTES + 1)).decode("utf-8")
    except (zlib.error, UnicodeDecodeError):
        raise CorruptFileError("the file's image names are corrupt") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise CorruptFileError("the file's image names are longer than its images allow, or cut short")
    names = text.split(_NAME_SEPARATOR)
    if len(names) != count:
        raise CorruptFileError(f"the file names {len(names)} images but holds {count}")
    problem = name_problem(names)
    if problem:
        raise CorruptFileError(f"the file's image names are unsafe: {problem}")
    return names


def name_problem(names: list[str]) -> str | None:
    """Why ``names`` cannot be the file names of decoded images, or None when they can: each must be 1 to
    MAX_NAME_BYTES bytes of printable UTF-8, a plain name (no path separator, not hidden), with a lossless
    image suffix (what the decoder writes), and unique (ignoring case, for case-insensitive file systems)."""
    seen: set[str] = set()
    for name in names:
        if not name or len(name.encode("utf-8")) > MAX_NAME_BYTES:
            return f"a name of {len(name.encode('utf-8'))} bytes (1 to {MAX_NAME_BYTES} allowed)"
        if not name.isprintable() or "/" in name or "\\" in name or name.startswith("."):
            return f"{name!r} is not a plain, printable, non-hidden file name"
        if Path(name).suffix.lower() not in LOSSLESS_SUFFIXES:
            return f"{name!r} does not end in a lossless image suffix ({', '.join(LOSSLESS_SUFFIXES)})"
        if name.casefold() in seen:
            return f"{name!r} appears twice"
        seen.add(name.casefold())
    return None


# ---------------------------------------------------------------------- image I/O

def read_images(source: Path, limits: Limits) -> tuple[np.ndarray, list[str] | None, bool]:
    """(images (N, H, W) uint8, file names for a folder, whether it was a single image file)."""
    if source.is_dir():
        files = image_files(source, LOSSLESS_SUFFIXES)
        if not files:
            raise InputError(f"{source} holds no image files ({', '.join(LOSSLESS_SUFFIXES)})")
        problem = name_problem([p.name for p in files])
        if problem:
            raise InputError(f"{source}: cannot keep its file names: {problem}")
        images = [read_gray_image(p) for p in files]
        if len({im.shape for im in images}) > 1:
            raise InputError(f"the images in {source} differ in size; a model codes one size")
        return np.stack(images), [p.name for p in files], False
    if not source.is_file():
        raise InputError(f"input not found: {source}")
    if source.stat().st_size == 0:
        raise InputError(f"{source} is empty")
    if is_idx_path(source):
        array = read_idx(source, max_bytes=limits.max_pixels)
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3:
            raise InputError(f"{source} holds an array of shape {array.shape}; expected (count, height, width)")
        return array, None, False
    return read_gray_image(source)[None], None, True


def write_images(target: Path, images: np.ndarray, names: list[str] | None) -> None:
    """Write decoded images atomically: one image file, an IDX file, or a new folder of PNGs."""
    if is_idx_path(target):
        write_idx(target, images)
        return
    if target.suffix.lower() in LOSSLESS_SUFFIXES and len(images) == 1 and names is None:
        with atomic_output(target) as temporary:
            Image.fromarray(images[0], mode="L").save(temporary, format=Image.registered_extensions()[target.suffix.lower()])
        return
    if target.suffix.lower() in LOSSLESS_SUFFIXES:
        raise InputError(f"the file holds {len(images)} images: decode it to a folder or an IDX file (*-ubyte[.gz])")
    _write_folder(target, images, names or [f"{i:05d}.png" for i in range(len(images))])


def _write_folder(target: Path, images: np.ndarray, names: list[str]) -> None:
    if target.exists():
        raise InputError(f"{target} exists; decoding many images writes a new folder")
    parent = target.resolve().parent
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    try:
        for image, name in zip(images, names):
            fmt = Image.registered_extensions().get(Path(name).suffix.lower(), "PNG")
            Image.fromarray(image, mode="L").save(staging / name, format=fmt)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
