"""What coding only the latent over the picture saves: cropped-latent coding against the whole padded latent.

Images are padded to a multiple of 64; the latent positions wholly in the padding cover no pixel, and
cropped-latent files (``cropped_latent``) leave them out (the decoder puts the hyperprior's snapped
means there). For each image model and quality this codes every image both ways through the codec's own
``encode_latent`` (stream bytes of the ANS stream, RGB PSNR of the reconstruction) and reports the
mean curves and the BD-rate of cropped against whole. By default it uses the first 8 training photos
whose sides are not multiples of 64 (never Kodak, whose sides all are: nothing to crop there).

    python benchmarks/cropped_latent.py --out runs/cropped-latent --models hyperprior-vr9c-n96,hyperprior-ctx2-vr9c
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench_output import write_results
from neuralcodec.codecs.image.codec import ImageHyperpriorCodec, to_uint8_image
from neuralcodec.codecs.common.transforms import ANALYSIS_STRIDE
from neuralcodec.codecs.image.latent_coding import crops_latent, picture_extent
from neuralcodec.codecs.image.model import padded_side
from neuralcodec.codecs.registry import load_codec
from neuralcodec.entropy import SymbolEncoder
from neuralcodec.eval.bdrate import bd_rate_or_reason
from neuralcodec.media.images import list_images, read_rgb
from neuralcodec.metrics import psnr

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "train-images"


def coded_point(codec: ImageHyperpriorCodec, rgb: np.ndarray, quality: float, cropped: bool) -> tuple[int, float]:
    """(stream bytes, RGB PSNR) of ``rgb`` coded with the cropped or the whole latent."""
    height, width = rgb.shape[:2]
    level = codec.level_of(quality)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    encoder = SymbolEncoder()
    with torch.no_grad():
        y_hat, _ = codec.encode_latent(codec.analyze(x, level), level, encoder,
                                       picture=(height, width) if cropped else None)
        x_hat = codec.synthesize(y_hat, level, height, width)
    return len(encoder.finish()), psnr(rgb, to_uint8_image(x_hat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", default="hyperprior-vr9c-n96")
    parser.add_argument("--images", type=Path, default=PHOTOS, help="a folder of images (searched recursively)")
    parser.add_argument("--count", type=int, default=8, help="the first N images (by name) that have padding")
    parser.add_argument("--qualities", default="2,4,6,8")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = [read_rgb(path) for path in list_images(args.images)]
    images = [rgb for rgb in images if crops_latent(*rgb.shape[:2])][:args.count]
    qualities = [float(q) for q in args.qualities.split(",")]
    padded_share = [1 - np.prod(picture_extent(*rgb.shape[:2]))
                    / np.prod([padded_side(side) // ANALYSIS_STRIDE for side in rgb.shape[:2]]) for rgb in images]
    results: dict = {"images": len(images), "padded_latent_share": [round(float(s), 4) for s in padded_share],
                     "qualities": qualities, "models": {}}
    lines = [f"## Cropped against whole latents: {len(images)} images, padded share of the latent "
             f"{min(padded_share):.1%}–{max(padded_share):.1%}", "",
             "| model | whole: bpp / PSNR | cropped: bpp / PSNR | BD-rate cropped vs whole |", "|---|---|---|---|"]
    for model in args.models.split(","):
        codec = load_codec(model)
        curves = {}
        for cropped in (False, True):
            curve = []
            for quality in tqdm(qualities, desc=f"{model} {'cropped' if cropped else 'whole'}"):
                points = [coded_point(codec, rgb, quality, cropped) for rgb in images]
                pixels = sum(rgb.shape[0] * rgb.shape[1] for rgb in images)
                curve.append((8 * sum(b for b, _ in points) / pixels, float(np.mean([p for _, p in points]))))
            curves["cropped" if cropped else "whole"] = curve
        bd = bd_rate_or_reason(curves["whole"], curves["cropped"])
        results["models"][model] = {**curves, "bd_rate_percent": bd}
        cells = [" · ".join(f"{b:.4f} / {p:.2f}" for b, p in curves[k]) for k in ("whole", "cropped")]
        lines.append(f"| {model} | {cells[0]} | {cells[1]} | {bd} |")
    write_results(args.out, "cropped_latent", results, lines)


if __name__ == "__main__":
    main()
