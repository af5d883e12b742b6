"""Golden files: one small committed .ncd file per shipped codec model (and per file layout), pinned by hash.

``tests/data/golden/`` holds, for every case below, a synthetic input (made here from numpy: gradients,
shapes and seeded noise; no dataset file is copied), the .ncd file the public API
``neuralcodec.encode_file`` wrote for it, and ``manifest.json``: per case the input, model, encode
arguments, the sha256 of the .ncd bytes and the sha256 of the *decoded pixels* (``pixel_sha256``: uint8
array, shape included; never the bytes of a PNG, which depend on zlib and Pillow), plus the machine the
files were made on. ``tests/test_golden.py`` checks, with the public API only, that today's encoder
writes exactly these bytes and today's decoder turns them into exactly these pixels.

Usage, from the repository root::

    python tests/golden_files.py            # write inputs, .ncd files and manifest.json (refuses to change pinned files)
    python tests/golden_files.py --check    # check the committed files against today's code; writes nothing
    python tests/golden_files.py --record-cpu   # record the pixels this CPU class decodes where they differ

Image pixels come out of float32 synthesis transforms, whose kernels (oneDNN) differ by CPU class: under
AVX-512 a few pixels of some files round the other way than under AVX2 (the entropy decoding, which the
design pins, is identical). A case therefore pins one pixel hash (``pixel_sha256``) and, for CPU classes
(``torch.backends.cpu.get_cpu_capability()``) that decode other pixels, theirs (``pixel_sha256_by_cpu``),
recorded with ``--record-cpu`` on such a machine; the test compares with the hash of its own class.

When to regenerate: only when a change of the file format or of the encoder's output is *intended* (a new
model version, a new container field, a retrained model...). A refactor must never need it: if
``test_golden.py`` fails after a refactor, the refactor changed users' files; fix the code, not the
golden files. When a change is intended, users' existing files must still decode, so do not overwrite
old cases: rename them (e.g. ``<name>-v1``) and set ``"encoder_pinned": false`` in their manifest entries
(the test then only decodes them, to their pinned pixels), then add the new cases and run with
``--force`` (which is needed to change an existing case's bytes or pixels).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
MANIFEST = GOLDEN / "manifest.json"

# name -> input (relative to GOLDEN), shipped model id, keyword arguments of neuralcodec.encode_file
# (besides model), what the decoded output is ("image", "images": a folder of images, "video").
CASES: list[dict] = [
    # the default image model (compact layout): low and high quality, a fractional quality (gains
    # interpolated between levels), the default quality on a grayscale image, and RGBA (regular layout:
    # the alpha plane is its own section)
    {"name": "vr9c-q1", "input": "rgb-103x71.png", "model": "hyperprior-vr9c-n96", "args": {"quality": 1}, "decoded": "image"},
    {"name": "vr9c-q9", "input": "rgb-103x71.png", "model": "hyperprior-vr9c-n96", "args": {"quality": 9}, "decoded": "image"},
    {"name": "vr9c-q4.5", "input": "rgb-103x71.png", "model": "hyperprior-vr9c-n96", "args": {"quality": 4.5}, "decoded": "image"},
    {"name": "vr9c-gray-qdefault", "input": "gray-77x53.png", "model": "hyperprior-vr9c-n96", "args": {}, "decoded": "image"},
    {"name": "vr9c-rgba-q5", "input": "rgba-61x45.png", "model": "hyperprior-vr9c-n96", "args": {"quality": 5}, "decoded": "image"},
    # the other image models, one quality each (vr-n96 has no compact code: regular layout)
    {"name": "vr-q3", "input": "rgb-103x71.png", "model": "hyperprior-vr-n96", "args": {"quality": 3}, "decoded": "image"},
    {"name": "vr9-q2", "input": "rgb-103x71.png", "model": "hyperprior-vr9-n96", "args": {"quality": 2}, "decoded": "image"},
    {"name": "vr9b-q7", "input": "rgb-103x71.png", "model": "hyperprior-vr9b-n96", "args": {"quality": 7}, "decoded": "image"},
    # the context models on vr9c's transforms (compact layout): groups + checkerboard passes (ctx, ctx3 are retired)
    {"name": "ctx-vr9c-q3", "input": "rgb-103x71.png", "model": "hyperprior-ctx-vr9c", "args": {"quality": 3}, "decoded": "image"},
    {"name": "ctx2-vr9c-q3", "input": "rgb-103x71.png", "model": "hyperprior-ctx2-vr9c", "args": {"quality": 3}, "decoded": "image"},
    {"name": "ctx3-vr9c-q3", "input": "rgb-103x71.png", "model": "hyperprior-ctx3-vr9c", "args": {"quality": 3}, "decoded": "image"},
    # the context model fine-tuned end to end (its own transforms): ctx3e (retired) and ctx3e2, the default
    {"name": "ctx3e-q1", "input": "rgb-103x71.png", "model": "hyperprior-ctx3e-n96", "args": {"quality": 1}, "decoded": "image"},
    {"name": "ctx3e-q6", "input": "rgb-103x71.png", "model": "hyperprior-ctx3e-n96", "args": {"quality": 6}, "decoded": "image"},
    {"name": "ctx3e2-q1", "input": "rgb-103x71.png", "model": "hyperprior-ctx3e2-n96", "args": {"quality": 1}, "decoded": "image"},
    {"name": "ctx3e2-q6", "input": "rgb-103x71.png", "model": "hyperprior-ctx3e2-n96", "args": {"quality": 6}, "decoded": "image"},
    # face models: grey 112x92 faces, compact layout
    {"name": "faces-ipr-q2", "input": "face-92x112.png", "model": "faces-ipr", "args": {"quality": 2}, "decoded": "image"},
    {"name": "faces-mse-q4", "input": "face-92x112.png", "model": "faces-mse", "args": {"quality": 4}, "decoded": "image"},
    # lossless models: one image (compact layout), a folder of images (names kept), an IDX file
    {"name": "hclt-mnist-single", "input": "digit-28x28.png", "model": "hclt-mnist", "args": {}, "decoded": "image"},
    {"name": "hclt-fashion-single", "input": "garment-28x28.png", "model": "hclt-fashion-mnist", "args": {}, "decoded": "image"},
    {"name": "hclt-mnist-folder3", "input": "digits", "model": "hclt-mnist", "args": {}, "decoded": "images"},
    {"name": "hclt-fashion-idx3", "input": "garments-idx3-ubyte", "model": "hclt-fashion-mnist", "args": {}, "decoded": "images"},
    # the lossless image codec (`--lossless`): RGB, RGBA and grey images of any size, tiles and chunks declared
    {"name": "lossless-image-rgb", "input": "rgb-103x71.png", "model": "lossless-image-h32", "args": {"lossless": True}, "decoded": "image"},
    {"name": "lossless-image-rgba", "input": "rgba-61x45.png", "model": "lossless-image-h32", "args": {"lossless": True}, "decoded": "image"},
    {"name": "lossless-image-gray", "input": "gray-77x53.png", "model": "lossless-image-h32", "args": {"lossless": True}, "decoded": "image"},
    # the default lossless image model since it replaced h32 (context scheme "errors": error planes on the canvas)
    {"name": "lossless-image-h64-rgb", "input": "rgb-103x71.png", "model": "lossless-image-h64", "args": {"lossless": True}, "decoded": "image"},
    {"name": "lossless-image-h64-rgba", "input": "rgba-61x45.png", "model": "lossless-image-h64", "args": {"lossless": True}, "decoded": "image"},
    {"name": "lossless-image-h64-gray", "input": "gray-77x53.png", "model": "lossless-image-h64", "args": {"lossless": True}, "decoded": "image"},
    # video: 5 frames, the API's GOP (10): frame 0 is an I-frame, frames 1-4 P-frames
    {"name": "video-st-q5", "input": "clip-64x48.y4m", "model": "video-st-vr9-n96", "args": {"quality": 5}, "decoded": "video"},
    # motion-compensated video: the same clip, frames 1-4 as overlapped block motion, filtered, plus a coded
    # residual; the I-frame at its own gain level (intra_level; the legacy case video-mc-q4-v1 has none),
    # coded by the image context model (intra_context; the legacy cases -v1..-v3 have none)
    {"name": "video-mc-q4", "input": "clip-64x48.y4m", "model": "video-mc-vr9c", "args": {"quality": 4}, "decoded": "video"},
]


# ---------------------------------------------------------------------------------------- hashing
def cpu_class() -> str:
    """The CPU class whose float32 kernels torch uses here (e.g. ``AVX2``, ``AVX512``)."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def expected_pixel_sha256(case: dict) -> str:
    """The pixel hash a manifest ``case`` pins for this machine's CPU class."""
    return case.get("pixel_sha256_by_cpu", {}).get(cpu_class(), case["pixel_sha256"])


def pixel_sha256(array: np.ndarray) -> str:
    """Canonical hash of decoded pixels: ``sha256(b"uint8:" + b"x".join(shape) + b":" + C-order bytes)``."""
    a = np.ascontiguousarray(array)
    if a.dtype != np.uint8:
        raise TypeError(f"decoded pixels must be uint8, got {a.dtype}")
    head = ("uint8:" + "x".join(str(n) for n in a.shape) + ":").encode()
    return hashlib.sha256(head + a.tobytes()).hexdigest()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------- readers
def read_image(path: Path) -> np.ndarray:
    """Pixels of an image file as Pillow decodes them: (H, W) for L, (H, W, C) otherwise."""
    with Image.open(path) as image:
        image.load()
        return np.asarray(image).copy()


def read_folder(folder: Path) -> tuple[np.ndarray, list[str]]:
    """The images of a folder in file-name order, stacked, and their names."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    return np.stack([read_image(p) for p in files]), [p.name for p in files]


def read_idx(path: Path) -> np.ndarray:
    """A (count, height, width) uint8 IDX file."""
    data = Path(path).read_bytes()
    if data[:3] != b"\0\0\x08":
        raise ValueError(f"{path} is not a uint8 IDX file")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim:], np.uint8).reshape(shape)


def read_y4m(path: Path) -> tuple[str, np.ndarray]:
    """(header line, samples (frames, bytes per frame) uint8) of an 8-bit Y4M file with 4:2:0 or 4:4:4 chroma."""
    data = Path(path).read_bytes()
    end = data.index(b"\n")
    header = data[:end].decode("ascii")
    fields = {p[0]: p[1:] for p in header.split()[1:]}
    width, height, chroma = int(fields["W"]), int(fields["H"]), fields.get("C", "420jpeg")
    if chroma.startswith("420"):
        frame_bytes = width * height + 2 * (-(-width // 2)) * (-(-height // 2))
    elif chroma == "444":
        frame_bytes = 3 * width * height
    else:
        raise ValueError(f"{path}: unexpected Y4M chroma C{chroma}")
    frames, pos = [], end + 1
    while pos < len(data):
        marker_end = data.index(b"\n", pos)
        if not data[pos:marker_end].startswith(b"FRAME"):
            raise ValueError(f"{path}: no FRAME marker at byte {pos}")
        pos = marker_end + 1
        frames.append(np.frombuffer(data[pos:pos + frame_bytes], np.uint8))
        if len(frames[-1]) != frame_bytes:
            raise ValueError(f"{path}: truncated frame {len(frames) - 1}")
        pos += frame_bytes
    return header, np.stack(frames)


def input_pixels(path: Path) -> np.ndarray:
    """The pixels of a committed input (an image, a folder of images, an IDX file or a Y4M file's samples)."""
    if path.is_dir():
        return read_folder(path)[0]
    if path.name.endswith("-ubyte"):
        return read_idx(path)
    if path.suffix == ".y4m":
        return read_y4m(path)[1]
    return read_image(path)


# ---------------------------------------------------------------------------------------- coding
def encode_case(case: dict, target: Path, verify: bool = False) -> dict:
    """Encode the case's committed input to ``target`` with the public API; returns the encoder's stats."""
    import neuralcodec

    return neuralcodec.encode_file(GOLDEN / case["input"], target, model=case["model"], verify=verify, **case["args"])


def decode_case(ncd: Path, kind: str, workdir: Path) -> dict:
    """Decode ``ncd`` with the public API into ``workdir``; returns the decoded pixels (and extras) with hashes."""
    import neuralcodec

    if kind == "image":
        out = workdir / "decoded.png"
        neuralcodec.decode_file(ncd, out)
        pixels = read_image(out)
        with Image.open(out) as image:
            mode = image.mode
        return {"pixels": pixels, "mode": mode, "shape": list(pixels.shape), "pixel_sha256": pixel_sha256(pixels)}
    if kind == "images":
        out = workdir / "decoded"  # a folder of PNGs, named as the inputs were
        neuralcodec.decode_file(ncd, out)
        pixels, names = read_folder(out)
        return {"pixels": pixels, "names": names, "shape": list(pixels.shape), "pixel_sha256": pixel_sha256(pixels)}
    if kind == "video":
        frames_dir = workdir / "frames"  # no suffix: a folder of PNG frames, the exact decoded RGB
        neuralcodec.decode_file(ncd, frames_dir)
        pixels, _ = read_folder(frames_dir)
        y4m = workdir / "decoded.y4m"  # what most users write: 4:2:0, converted from those frames
        neuralcodec.decode_file(ncd, y4m)
        header, samples = read_y4m(y4m)
        return {"pixels": pixels, "shape": list(pixels.shape), "pixel_sha256": pixel_sha256(pixels),
                "y4m_header": header, "y4m_sha256": pixel_sha256(samples)}
    raise ValueError(f"unknown decoded kind {kind!r}")


# ---------------------------------------------------------------------------------------- machine
def machine() -> dict:
    """The CPU (model string, AVX-512 flags) and library versions the files were made with."""
    import torch

    model, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    return {"cpu": model, "avx2": "avx2" in flags, "avx512f": "avx512f" in flags, "avx512_bf16": "avx512_bf16" in flags,
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "numpy": np.__version__, "pillow": Image.__version__, "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.machine()}"}


# ---------------------------------------------------------------------------------------- inputs
def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return y / max(height - 1, 1), x / max(width - 1, 1)


def _soft(distance: np.ndarray, edge: float = 0.75) -> np.ndarray:
    """Anti-aliased coverage of a shape from its signed distance (pixels; negative inside)."""
    return np.clip(0.5 - distance / (2 * edge), 0.0, 1.0)


def _segment_distance(py: np.ndarray, px: np.ndarray, a: tuple, b: tuple) -> np.ndarray:
    (ay, ax), (by, bx) = a, b
    dy, dx = by - ay, bx - ax
    t = np.clip(((py - ay) * dy + (px - ax) * dx) / max(dy * dy + dx * dx, 1e-9), 0.0, 1.0)
    return np.hypot(py - (ay + t * dy), px - (ax + t * dx))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def scene_rgb(height: int, width: int, seed: int, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """A colourful synthetic picture: gradients, a disk, a rotated square, a stripe pattern, seeded noise.
    ``shift`` moves the foreground objects (for video frames); the noise texture stays the same."""
    v, u = _grid(height, width)
    py, px = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.stack([40 + 150 * u + 30 * v, 60 + 120 * v, 200 - 140 * u * v], axis=-1)
    image += 18 * np.sin(2 * np.pi * (3 * u + 2 * v))[..., None] * np.array([1.0, -0.5, 0.3])
    sy, sx = shift
    disk = _soft(np.hypot(py - (0.45 * height + sy), px - (0.3 * width + sx)) - 0.22 * min(height, width))
    image = image * (1 - disk[..., None]) + disk[..., None] * np.array([230.0, 70.0, 40.0])
    cy, cx, half, angle = 0.6 * height - sy, 0.7 * width + 0.5 * sx, 0.17 * min(height, width), 0.5
    ry = np.cos(angle) * (py - cy) - np.sin(angle) * (px - cx)
    rx = np.sin(angle) * (py - cy) + np.cos(angle) * (px - cx)
    square = _soft(np.maximum(np.abs(ry), np.abs(rx)) - half)
    image = image * (1 - square[..., None]) + square[..., None] * np.array([30.0, 90.0, 210.0])
    stripes = _soft(np.abs(((px + 2 * py) % 8) - 4) - 1.5) * (py > 0.8 * height)
    image = image * (1 - 0.5 * stripes[..., None]) + 0.5 * stripes[..., None] * 250.0
    return _to_uint8(image + _rng(seed).normal(0.0, 3.0, image.shape))


def gray_image(height: int, width: int, seed: int) -> np.ndarray:
    v, u = _grid(height, width)
    py, px = np.mgrid[0:height, 0:width].astype(np.float64)
    image = 30 + 170 * (0.6 * u + 0.4 * v) + 20 * np.cos(2 * np.pi * 2 * v)
    ring = _soft(np.abs(np.hypot(py - 0.5 * height, px - 0.55 * width) - 0.3 * height) - 2.5)
    image = image * (1 - ring) + 235 * ring
    bar = _soft(np.maximum(np.abs(py - 0.25 * height) - 3, np.abs(px - 0.3 * width) - 0.2 * width))
    image = image * (1 - bar) + 15 * bar
    return _to_uint8(image + _rng(seed).normal(0.0, 3.0, image.shape))


def rgba_image(height: int, width: int, seed: int) -> np.ndarray:
    """A picture whose alpha is a soft disk over a ramp (partial transparency everywhere, some fully clear)."""
    rgb = scene_rgb(height, width, seed)
    v, u = _grid(height, width)
    py, px = np.mgrid[0:height, 0:width].astype(np.float64)
    disk = _soft(np.hypot(py - 0.5 * height, px - 0.5 * width) - 0.42 * height, edge=3.0)
    alpha = _to_uint8(255 * np.maximum(disk, 0.6 * u) * (u > 0.08))
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def face_image(seed: int, height: int = 112, width: int = 92) -> np.ndarray:
    """A face-like grey 112x92 picture: shaded oval head, hair, eyes, nose, mouth on a graded background."""
    py, px = np.mgrid[0:height, 0:width].astype(np.float64)
    cy, cx = 0.52 * height, 0.5 * width
    image = 60 + 50 * py / height + 15 * np.sin(px / 9.0)
    head = _soft((np.hypot((py - cy) / 40.0, (px - cx) / 30.0) - 1.0) * 30.0, edge=1.5)
    shade = 150 + 45 * (px - cx) / 30.0 - 20 * ((py - cy) / 40.0) ** 2
    image = image * (1 - head) + head * shade
    hair = _soft((np.hypot((py - cy + 12) / 40.0, (px - cx) / 33.0) - 1.0) * 30.0) * (py < cy - 22)
    image = image * (1 - hair) + hair * (45 + 10 * np.sin(px / 2.0))
    for ex in (cx - 12, cx + 12):
        eye = _soft((np.hypot((py - cy + 8) / 3.0, (px - ex) / 6.0) - 1.0) * 3.0)
        image = image * (1 - eye) + eye * 35
        brow = _soft(_segment_distance(py, px, (cy - 15, ex - 7), (cy - 16, ex + 7)) - 1.2)
        image = image * (1 - brow) + brow * 55
    nose = _soft(_segment_distance(py, px, (cy - 4, cx + 1), (cy + 9, cx - 2)) - 1.0)
    image = image * (1 - 0.5 * nose) + 0.5 * nose * 90
    mouth = _soft(np.abs(np.hypot((py - cy - 8) / 14.0, (px - cx) / 14.0) - 1.0) * 14.0 - 1.2) * (py > cy + 17)
    image = image * (1 - mouth) + mouth * 70
    return _to_uint8(image + _rng(seed).normal(0.0, 2.5, image.shape))


def stroke_image(strokes: list, width_px: float, seed: int, size: int = 28) -> np.ndarray:
    """A digit-like 28x28 picture: white anti-aliased strokes (polylines) on black, as in MNIST."""
    py, px = np.mgrid[0:size, 0:size].astype(np.float64)
    distance = np.full((size, size), np.inf)
    for polyline in strokes:
        for a, b in zip(polyline[:-1], polyline[1:]):
            distance = np.minimum(distance, _segment_distance(py, px, a, b))
    ink = _soft(distance - width_px, edge=0.9)
    jitter = _rng(seed).integers(-12, 13, (size, size)) * (ink > 0.2)
    return _to_uint8(255 * ink + jitter)


def _arc(cy: float, cx: float, r: float, start: float, stop: float, n: int = 12) -> list:
    return [(cy - r * np.cos(t), cx + r * np.sin(t)) for t in np.linspace(start, stop, n)]


DIGITS = {  # (row, column) polylines in a 28x28 box
    "seven": [[(6, 7), (6, 20), (22, 11)], [(14, 11), (14, 18)]],
    "two": [_arc(10, 14, 5, -1.6, 2.2) + [(21, 8), (21, 21)]],
    "three": [_arc(10, 14, 4.5, -1.8, 3.1), _arc(18, 14, 4.5, 0.0, 4.6)],
    "zero": [_arc(14, 14, 7.5, 0.0, 2 * np.pi, 24)],
}


def garment_image(seed: int, kind: int = 0, size: int = 28) -> np.ndarray:
    """A Fashion-MNIST-like 28x28 silhouette (0: shirt, 1: trousers, 2: bag) with a textured fill."""
    py, px = np.mgrid[0:size, 0:size].astype(np.float64)
    if kind == 0:
        body = np.maximum(np.abs(px - 13.5) - 7, np.abs(py - 15) - 10)
        sleeves = np.maximum(np.abs(np.abs(px - 13.5) - 10) - 3, np.abs(py - 10) - 5)
        shape = np.minimum(body, sleeves)
        neck = _soft(np.hypot(py - 4, px - 13.5) - 3.5)
    elif kind == 1:
        shape = np.minimum(np.maximum(np.abs(px - 9.5) - 4, np.abs(py - 14) - 11),
                           np.maximum(np.abs(px - 17.5) - 4, np.abs(py - 14) - 11))
        shape = np.minimum(shape, np.maximum(np.abs(px - 13.5) - 8, np.abs(py - 5) - 2))
        neck = np.zeros_like(py)
    else:
        shape = np.maximum(np.abs(px - 13.5) - 10, np.abs(py - 17) - 7)
        handle = np.abs(np.hypot(py - 10, px - 13.5) - 6) - 1.3
        shape = np.minimum(shape, np.where(py < 11, handle, np.inf))
        neck = np.zeros_like(py)
    cover = _soft(shape, edge=0.8) * (1 - neck)
    texture = 120 + 60 * np.sin(px / 1.7 + kind) * np.cos(py / 3.1) + 40 * py / size
    noise = _rng(seed).normal(0.0, 8.0, (size, size))
    return _to_uint8(cover * (texture + noise))


def write_idx(path: Path, images: np.ndarray) -> None:
    path.write_bytes(bytes([0, 0, 8, images.ndim]) + struct.pack(f">{images.ndim}I", *images.shape) + images.tobytes())


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 25) -> None:
    """4:2:0 (C420jpeg) Y4M of RGB frames: BT.601 limited range, chroma averaged over 2x2 blocks."""
    height, width = frames[0].shape[:2]
    matrix = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]) / 255.0
    out = [f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode()]
    for frame in frames:
        yuv = frame.astype(np.float64) @ matrix.T + np.array([16.0, 128.0, 128.0])
        chroma = [yuv[..., c].reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3)) for c in (1, 2)]
        out += [b"FRAME\n"] + [_to_uint8(plane).tobytes() for plane in (yuv[..., 0], *chroma)]
    path.write_bytes(b"".join(out))


def write_inputs(folder: Path) -> None:
    """Synthesize every input into ``folder`` (deterministic: fixed seeds, no dataset files)."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(scene_rgb(71, 103, seed=1), "RGB").save(folder / "rgb-103x71.png")
    Image.fromarray(gray_image(53, 77, seed=2), "L").save(folder / "gray-77x53.png")
    Image.fromarray(rgba_image(45, 61, seed=3), "RGBA").save(folder / "rgba-61x45.png")
    Image.fromarray(face_image(seed=4), "L").save(folder / "face-92x112.png")
    Image.fromarray(stroke_image(DIGITS["seven"], 1.6, seed=5), "L").save(folder / "digit-28x28.png")
    Image.fromarray(garment_image(seed=6, kind=0), "L").save(folder / "garment-28x28.png")
    digits = folder / "digits"
    digits.mkdir(exist_ok=True)
    for index, (name, width) in enumerate((("two", 1.5), ("three", 1.3), ("zero", 1.8))):
        Image.fromarray(stroke_image(DIGITS[name], width, seed=10 + index), "L").save(digits / f"{name}.png")
    write_idx(folder / "garments-idx3-ubyte", np.stack([garment_image(seed=20 + k, kind=k) for k in range(3)]))
    frames = [scene_rgb(48, 64, seed=7, shift=(1.0 * t, 2.0 * t)) for t in range(5)]
    write_y4m(folder / "clip-64x48.y4m", frames)


# ---------------------------------------------------------------------------------------- main
def make_case(case: dict, workdir: Path) -> tuple[bytes, dict]:
    """(the .ncd bytes today's encoder writes, the manifest entry of ``case``)."""
    ncd = workdir / f"{case['name']}.ncd"
    stats = encode_case(case, ncd, verify=True)
    (workdir / case["name"]).mkdir()
    decoded = decode_case(ncd, case["decoded"], workdir / case["name"])
    data = ncd.read_bytes()
    entry = {**{k: case[k] for k in ("name", "input", "model", "args")},
             "encode_call": f"neuralcodec.encode_file({case['input']!r}, {case['name'] + '.ncd'!r}, model={case['model']!r}"
                            + "".join(f", {k}={v!r}" for k, v in case["args"].items()) + ")",
             "input_pixel_sha256": pixel_sha256(input_pixels(GOLDEN / case["input"])),
             "ncd": f"{case['name']}.ncd", "ncd_bytes": len(data), "ncd_sha256": hashlib.sha256(data).hexdigest(),
             "layout": "compact" if data[:2] == b"Nc" else "regular",
             "decoded": case["decoded"], "decoded_shape": decoded["shape"], "pixel_sha256": decoded["pixel_sha256"],
             "encoder_pinned": True,
             "encoder_stats": {k: v for k, v in stats.items() if k not in ("seconds", "encode_fps")}}
    for key in ("mode", "names", "y4m_header", "y4m_sha256"):
        if key in decoded:
            entry[f"decoded_{key}" if not key.startswith("y4m") else key] = decoded[key]
    return data, entry


def check(verbose: bool = True) -> list[str]:
    """Problems of the committed golden files under today's code (empty: all good)."""
    manifest = json.loads(MANIFEST.read_text())
    problems = []
    with tempfile.TemporaryDirectory() as temporary:
        fresh = Path(temporary) / "inputs"
        write_inputs(fresh)
        for case in manifest["cases"]:
            name = case["name"]
            workdir = Path(temporary) / name
            workdir.mkdir()
            committed = GOLDEN / case["ncd"]
            if file_sha256(committed) != case["ncd_sha256"]:
                problems.append(f"{name}: the committed {case['ncd']} does not have the manifest's sha256")
            if pixel_sha256(input_pixels(GOLDEN / case["input"])) != case["input_pixel_sha256"]:
                problems.append(f"{name}: the committed input {case['input']} does not have the manifest's pixel sha256")
            if pixel_sha256(input_pixels(fresh / case["input"])) != case["input_pixel_sha256"]:
                problems.append(f"{name}: re-synthesizing {case['input']} gives other pixels (numpy version?)")
            decoded = decode_case(committed, case["decoded"], workdir)
            if decoded["pixel_sha256"] != expected_pixel_sha256(case):
                problems.append(f"{name}: decoding {case['ncd']} gives other pixels")
            if "y4m_sha256" in case and decoded["y4m_sha256"] != case["y4m_sha256"]:
                problems.append(f"{name}: decoding {case['ncd']} to .y4m gives other samples")
            if case.get("encoder_pinned", True):
                out = workdir / "encoded.ncd"
                encode_case(case, out)
                if out.read_bytes() != committed.read_bytes():
                    problems.append(f"{name}: today's encoder writes other bytes than {case['ncd']}")
            if verbose:
                print(f"{name:24s} {'ok' if not any(p.startswith(name + ':') for p in problems) else 'FAILED'}")
    return problems


def write(force: bool) -> None:
    """Write inputs, .ncd files and the manifest; refuses to change a pinned case unless ``force``."""
    old = {c["name"]: c for c in json.loads(MANIFEST.read_text())["cases"]} if MANIFEST.exists() else {}
    write_inputs(GOLDEN)
    entries, changed = [], []
    with tempfile.TemporaryDirectory() as temporary:
        for case in CASES:
            workdir = Path(temporary)
            data, entry = make_case(case, workdir)
            previous = old.get(case["name"])
            if previous and (previous["ncd_sha256"], previous["pixel_sha256"]) != (entry["ncd_sha256"], entry["pixel_sha256"]):
                changed.append(case["name"])
            entries.append((data, entry))
            print(f"{case['name']:24s} {entry['layout']:8s} {len(data):6d} bytes  {entry['decoded_shape']}")
    if changed and not force:
        sys.exit(f"refusing to change pinned golden files: {', '.join(changed)}. A refactor must not change them; "
                 "if a format change is intended, keep the old cases (see the module docstring) and pass --force.")
    for data, entry in entries:
        (GOLDEN / entry["ncd"]).write_bytes(data)
    kept = [c for name, c in old.items() if name not in {e["name"] for _, e in entries}]  # legacy cases stay
    manifest = {"about": "golden files of the shipped codec models; see tests/golden_files.py",
                "pixel_hash": "sha256(b'uint8:' + 'x'.join(shape) + ':' + C-order bytes) of the decoded uint8 array "
                              "(Pillow's array of the decoded PNG; a folder's images stacked in file-name order; "
                              "video: the PNG frames stacked (frames, H, W, 3); y4m_sha256: Y4M samples (frames, bytes))",
                "machine": machine(), "cases": kept + [entry for _, entry in entries]}
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(entries)} cases to {GOLDEN}")


def record_cpu() -> None:
    """Record, for this machine's CPU class, the pixels of every case whose decoding differs from the
    pinned ``pixel_sha256`` (the .ncd files and everything else stay as they are)."""
    manifest = json.loads(MANIFEST.read_text())
    with tempfile.TemporaryDirectory() as temporary:
        for case in manifest["cases"]:
            workdir = Path(temporary) / case["name"]
            workdir.mkdir()
            decoded = decode_case(GOLDEN / case["ncd"], case["decoded"], workdir)["pixel_sha256"]
            by_cpu = {k: v for k, v in case.get("pixel_sha256_by_cpu", {}).items() if k != cpu_class()}
            if decoded != case["pixel_sha256"]:
                by_cpu[cpu_class()] = decoded
                print(f"{case['name']:24s} {cpu_class()} decodes other pixels: recorded")
            if by_cpu:
                case["pixel_sha256_by_cpu"] = by_cpu
            else:
                case.pop("pixel_sha256_by_cpu", None)
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="check the committed files; write nothing")
    parser.add_argument("--force", action="store_true", help="allow changing the bytes or pixels of existing cases")
    parser.add_argument("--record-cpu", action="store_true",
                        help="record the pixels this CPU class decodes where they differ from the pinned ones")
    args = parser.parse_args()
    os.chdir(GOLDEN.parents[2])
    if args.record_cpu:
        record_cpu()
        return
    if args.check:
        problems = check()
        for problem in problems:
            print("FAIL", problem)
        sys.exit(1 if problems else 0)
    write(args.force)


if __name__ == "__main__":
    main()
