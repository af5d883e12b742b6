"""Ablation of the lossless image model's ideas on Kodak, in ideal bits per subpixel (no files written).

A ladder of count-based models (one smoothed histogram of residuals per plane and context class, counted
on the training photos, held-out ones excluded), each adding one idea to the one before:
  A. RGB planes, MED prediction, 9 activity levels
  B. + subtract-green (planes G, R-G, B-G)
  C. + texture classes (activity x 27 sign patterns): the codec's planes, predictions and 243 contexts
  D. C with a blended predictor (2 MED + W + NE) / 4 instead of MED (tried; better with histograms, worse
     with the circuit, so not kept)
  E. C with the neighbours' |MED errors| added to the activity (context scheme ``errors``)
then the circuit (``--model``: the chain HCLT over its scheme's variables, the exact coded rate of the
shipped fp16 parameters: the product of the conditionals the coder uses), on whole images and cut in
the codec's 1024-pixel tiles.

    python benchmarks/lossless_images_ablation.py --model lossless-image-h64 --out benchmarks/results/lossless_images
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from neuralcodec.codecs.lossless.image_header import TILE
from neuralcodec.codecs.lossless.image_model import bits_per_subpixel, image_variables
from neuralcodec.codecs.lossless.image_training import held_out, photo_files
from neuralcodec.codecs.lossless.planes import ACTIVITY_EDGES, CONTEXTS, SCHEMES, TEXTURE_LEVELS, ContextScheme
from neuralcodec.codecs.lossless.planes import decorrelated
from neuralcodec.codecs.lossless.planes import filled_canvas
from neuralcodec.codecs.registry import load_codec

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def ladder_variables(pixels: np.ndarray, step: str) -> np.ndarray:
    """(n, 6) context/residual variables of an RGB image for ladder step A-D (C is the codec's)."""
    if step in "CE":
        return image_variables(pixels, SCHEMES["gradients" if step == "C" else "errors"])
    planes = decorrelated(pixels) if step != "A" else np.moveaxis(pixels, -1, 0).astype(np.int32)
    board = filled_canvas(planes).astype(np.int32)
    _, h, w = planes.shape
    r, c = np.mgrid[2 : h + 2, 2 : w + 2]
    w_, n, nw, ne = board[:, r, c - 1], board[:, r - 1, c], board[:, r - 1, c - 1], board[:, r - 1, c + 1]
    ww, nn = board[:, r, c - 2], board[:, r - 2, c]
    high, low = np.maximum(w_, n), np.minimum(w_, n)
    median = np.where(nw >= high, low, np.where(nw <= low, high, w_ + n - nw))
    activity = np.abs(w_ - nw) + np.abs(n - nw) + np.abs(n - ne) + (np.abs(w_ - ww) + np.abs(n - nn)) // 2
    context = np.searchsorted(ACTIVITY_EDGES, activity, side="right")
    if step == "D":
        signs = [(d > -2).astype(np.int64) + (d >= 3) for d in (n - nw, w_ - nw, ne - n)]
        context = context * TEXTURE_LEVELS + (signs[0] * 3 + signs[1]) * 3 + signs[2]
        median = (2 * median + w_ + ne + 2) >> 2
    residual = np.mod(planes - median, 256)
    return np.stack([context.reshape(3, -1), residual.reshape(3, -1)], 1).reshape(6, -1).T


def ladder(train: list[np.ndarray], kodak: list[np.ndarray], step: str) -> float:
    counts = np.full((3, CONTEXTS, 256), 0.05)
    for image in train:
        v = ladder_variables(image, step)
        for plane in range(3):
            np.add.at(counts[plane], (v[:, 2 * plane], v[:, 2 * plane + 1]), 1)
    p = counts / counts.sum(-1, keepdims=True)
    bits = []
    for image in kodak:
        v = ladder_variables(image, step)
        bits.append(sum(-np.log2(p[k][v[:, 2 * k], v[:, 2 * k + 1]]).sum() for k in range(3)) / image.size)
    return float(np.mean(bits))


def circuit_bits(model: torch.nn.Module, scheme: ContextScheme, image: np.ndarray, tile: int | None) -> float:
    tiles = [image] if tile is None else [image[i : i + tile, j : j + tile] for i in range(0, image.shape[0], tile)
                                          for j in range(0, image.shape[1], tile)]
    total = 0.0
    for part in tiles:
        v = torch.from_numpy(image_variables(part, scheme).astype(np.int64))
        for start in range(0, len(v), 1 << 16):
            total += float(bits_per_subpixel(model, v[start : start + (1 << 16)]).sum()) * 3
    return total / image.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lossless-image-h64")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train_files, _ = held_out(photo_files(SHARED / "train-images"))
    train = [np.asarray(Image.open(p).convert("RGB")) for p in train_files]
    kodak = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((SHARED / "kodak").glob("*.png"))]
    result = {}
    for step in "ABCDE":
        result[f"histograms_{step}"] = ladder(train, kodak, step)
        print(step, round(result[f"histograms_{step}"], 4), flush=True)
    codec = load_codec(args.model)
    circuit = codec.likelihood_model("colour")
    with torch.no_grad():
        for name, tile in (("circuit_whole_image", None), (f"circuit_tiles_{TILE}", TILE)):
            result[name] = float(np.mean([circuit_bits(circuit, codec.scheme, image, tile) for image in kodak]))
            print(name, round(result[name], 4), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ablation.json").write_text(json.dumps({"model": args.model, "kodak_mean_bpsp": result}, indent=1))


if __name__ == "__main__":
    main()
