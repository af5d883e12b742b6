"""Kodak rate-distortion benchmark: every shipped image model against classical codecs (JPEG, WebP and
AVIF through Pillow by default; JPEG XL and HEVC-intra through ffmpeg with ``--classical``).

For each learned model and quality it encodes the 24 Kodak images to real .ncd files (compact ones for
models with a compact code, as ``codec encode`` writes them), decodes them,
checks that decoding is bit-exact to the encoder's reconstruction, and compares the file size with the
model's own rate estimate (Σ −log2 p of the training-time likelihoods, noise-free). Classical codecs
sweep their quality knob. Curves are averaged per quality point (mean bpp, mean PSNR-RGB, mean
MS-SSIM), BD-rates are computed against each classical codec and against CompressAI's published
bmshj2018-hyperprior and mbt2018 points, and a plot, a JSON file and a Markdown table are written.

    python benchmarks/kodak_rd.py --out benchmarks/results/kodak [--kodak ../shared/data/kodak] [--refine 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from neuralcodec import container
from neuralcodec.codecs.image.codec import to_uint8_image
from neuralcodec.codecs.image.model import pad_to_multiple
from neuralcodec.codecs.registry import load_codec
from neuralcodec.pretrained import compact_models
from neuralcodec.eval.adapters import refined_model_name
from neuralcodec.eval.bdrate import bd_rate_or_reason
from neuralcodec.eval.classical import get_classical
from neuralcodec.eval.ffmpeg_codecs import FFMPEG_CODECS
from neuralcodec.metrics import ms_ssim, psnr
from neuralcodec.eval.plots import plot_rd_curves
from neuralcodec.eval.report import average_rows
from neuralcodec.pretrained import list_models
from neuralcodec.media.images import list_images, read_rgb
from neuralcodec.train.losses import bits_per_pixel

DEFAULT_KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"
COMPRESSAI_BMSHJ2018_HYPERPRIOR = [(0.131, 27.58), (0.320, 30.97), (0.669, 34.53), (1.259, 38.58)]
"""Published Kodak points of CompressAI's bmshj2018-hyperprior (quoted in the issue)."""
COMPRESSAI_MBT2018 = [(0.1105, 28.09), (0.1870, 29.65), (0.2877, 31.36), (0.4323, 33.09), (0.6388, 35.09),
                      (0.8853, 36.99), (1.2004, 38.93), (1.5874, 40.64)]
"""Published Kodak points of CompressAI's mbt2018 (mean-scale hyperprior + serial autoregressive context), its
qualities 1-8 (CompressAI repository, results/image/kodak/compressai-mbt2018_mse_cpu.json)."""
PUBLISHED = {"compressai-bmshj2018-hyperprior (published)": COMPRESSAI_BMSHJ2018_HYPERPRIOR,
             "compressai-mbt2018 (published)": COMPRESSAI_MBT2018}
CURVE_METRICS = ("bpp", "psnr", "ms_ssim", "estimated_bpp")


def evaluate_learned(model_id: str, images: list[np.ndarray], qualities: list[float] | None,
                     refine_steps: int = 0) -> dict:
    """Per-quality averages and per-image rows of an image model (a shipped id or a weights file):
    ``qualities`` above its levels are skipped; None means each of its levels. With ``refine_steps``
    the encoder refines each image's latents, and the rate estimate is the coder's ideal bits of the
    symbols it coded (otherwise the model's training-time likelihoods of its plain latents)."""
    codec = load_codec(model_id)
    levels = codec.model.config.levels
    qualities = [float(q) for q in range(1, levels + 1)] if qualities is None else [q for q in qualities if q <= levels]
    rows = []
    for quality in tqdm(qualities, desc=refined_model_name(model_id, refine_steps), unit="quality"):
        for index, rgb in enumerate(images):
            x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
            started = time.perf_counter()
            payload, x_hat, stats = codec.compress(x, quality, refine_steps=refine_steps)
            data = container.serialize(*codec.packed(payload))  # the file `codec encode` writes
            file_bytes = len(data)
            encode_s = time.perf_counter() - started
            started = time.perf_counter()
            decoded = codec.decompress(container.read(data, compact_models=compact_models()))
            decode_s = time.perf_counter() - started
            height, width = rgb.shape[:2]
            if refine_steps:
                estimated_bpp = stats["ideal_bits"] / (height * width)
            else:
                with torch.no_grad():
                    out = codec.model(pad_to_multiple(x), quality - 1.0)
                estimated_bpp = float(bits_per_pixel(out["likelihoods"], height * width)[0])
            rec = to_uint8_image(decoded)
            rows.append({
                "image": index + 1, "quality": quality, "bytes": file_bytes,
                "bpp": 8 * file_bytes / (height * width), "estimated_bpp": estimated_bpp,
                "psnr": psnr(rgb, rec), "ms_ssim": ms_ssim(rgb, rec),
                "bit_exact": bool(torch.equal(decoded, x_hat)), "encode_s": encode_s, "decode_s": decode_s,
                **({"refined": stats["refined"]} if refine_steps else {}),
            })
    return {"rows": rows, "curve": average_rows(rows, "quality", CURVE_METRICS)}


def earlier_models(path: Path, images: int, exclude: list[str]) -> dict:
    """The learned models of an earlier run's kodak_rd.json, their rows restricted to its first ``images``
    images (this run's, when both list the Kodak folder in order) and their curves recomputed."""
    earlier = json.loads(path.read_text())["codecs"]
    models = {}
    for name, result in earlier.items():
        if name in exclude or "rows" not in result or "bit_exact" not in result["rows"][0]:
            continue
        rows = [r for r in result["rows"] if r["image"] <= images]
        models[name] = {"rows": rows, "curve": average_rows(rows, "quality", CURVE_METRICS)}
    return models


def evaluate_classical(name: str, images: list[np.ndarray]) -> dict:
    """Per-knob averages and per-image rows of a classical codec (Pillow's, or ffmpeg's JPEG XL / HEVC / AV1)."""
    codec = FFMPEG_CODECS[name] if name in FFMPEG_CODECS else get_classical(name)
    reason = codec.unavailable_reason()
    if reason is not None:
        return {"unavailable": reason}
    rows = []
    for quality in tqdm(codec.qualities, desc=name, unit="quality"):
        for index, rgb in enumerate(images):
            data = codec.encode(rgb, quality)
            rec = codec.decode(data)
            height, width = rgb.shape[:2]
            rows.append({"image": index + 1, "quality": quality, "bytes": len(data),
                         "bpp": 8 * len(data) / (height * width), "psnr": psnr(rgb, rec), "ms_ssim": ms_ssim(rgb, rec)})
    return {"rows": rows, "curve": average_rows(rows, "quality", CURVE_METRICS)}


def _points(curve: list[dict], metric: str = "psnr") -> list[tuple[float, float]]:
    return [(p["bpp"], p[metric]) for p in curve]


def _markdown(results: dict) -> str:
    lines = ["| codec | quality | bpp | PSNR-RGB (dB) | MS-SSIM |", "|---|---|---|---|---|"]
    for name, result in results["codecs"].items():
        for p in result.get("curve", []):
            lines.append(f"| {name} | {p['quality']:g} | {p['bpp']:.3f} | {p['psnr']:.2f} | {p['ms_ssim']:.4f} |")
    lines += ["", "| learned model | anchor | BD-rate (PSNR, pchip) |", "|---|---|---|"]
    for model, anchors in results["bd_rate"].items():
        for anchor, value in anchors.items():
            lines.append(f"| {model} | {anchor} | {value if isinstance(value, str) else f'{value:+.2f}%'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kodak", type=Path, default=DEFAULT_KODAK, help="folder with the 24 Kodak PNGs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/kodak"))
    parser.add_argument("--classical", default="jpeg,webp,avif",
                        help="comma-separated classical codecs (e.g. jpeg,webp,avif,jpegxl,hevc; see neuralcodec.eval.classical)")
    parser.add_argument("--qualities", default=None,
                        help="comma-separated learned-model qualities (default: every level of each model)")
    parser.add_argument("--models", default=None,
                        help="comma-separated image models: shipped ids or .safetensors files (default: every shipped one)")
    parser.add_argument("--refine", type=int, default=0, metavar="STEPS",
                        help="encoder-side latent refinement steps for the learned models (default 0: off)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images (quick runs)")
    parser.add_argument("--fresh", action="store_true", help="recompute cached classical-codec results")
    parser.add_argument("--anchors-from", type=Path, default=None, metavar="KODAK_RD_JSON",
                        help="also compare with the learned models of an earlier run's kodak_rd.json, on its rows "
                             "of this run's images (e.g. to compare a new model with a measured one on --limit images)")
    args = parser.parse_args(argv)
    if not args.kodak.is_dir():
        print(f"Kodak folder not found: {args.kodak}", file=sys.stderr)
        return 2
    files = list_images(args.kodak)[: args.limit or None]
    images = [read_rgb(f) for f in files]
    qualities = [float(q) for q in args.qualities.split(",")] if args.qualities else None
    torch.set_grad_enabled(False)

    results: dict = {"images": [f.name for f in files], "codecs": {}, "bd_rate": {}}
    model_ids = (args.models.split(",") if args.models
                 else [m.model_id for m in list_models() if m.codec == "image-hyperprior"])
    learned = [refined_model_name(model_id, args.refine) for model_id in model_ids]
    args.out.mkdir(parents=True, exist_ok=True)
    for model_id, label in zip(model_ids, learned):
        results["codecs"][label] = evaluate_learned(model_id, images, qualities, args.refine)
    for name in args.classical.split(","):
        # Classical results depend only on Pillow and the images: cached per codec, --fresh recomputes.
        cache = args.out / f"classical_{name}_{len(files)}images.json"
        if cache.exists() and not args.fresh:
            results["codecs"][name] = json.loads(cache.read_text())
        else:
            results["codecs"][name] = evaluate_classical(name, images)
            cache.write_text(json.dumps(results["codecs"][name]))
    if args.anchors_from is not None:
        results["codecs"].update(earlier_models(args.anchors_from, len(files), exclude=learned))
    anchors = {name: _points(r["curve"]) for name, r in results["codecs"].items() if name not in learned and "curve" in r}
    anchors.update(PUBLISHED)
    for model_id in learned:
        test = _points(results["codecs"][model_id]["curve"])
        results["bd_rate"][model_id] = {name: bd_rate_or_reason(anchor, test) for name, anchor in anchors.items()}
        rows = results["codecs"][model_id]["rows"]
        results["codecs"][model_id]["all_bit_exact"] = all(r["bit_exact"] for r in rows)
        results["codecs"][model_id]["max_rate_gap_percent"] = max(
            100 * abs(r["bpp"] / r["estimated_bpp"] - 1) for r in rows)

    (args.out / "kodak_rd.json").write_text(json.dumps(results, indent=1))
    (args.out / "kodak_rd.md").write_text(_markdown(results))
    curves = {name: _points(r["curve"]) for name, r in results["codecs"].items() if "curve" in r}
    curves.update(PUBLISHED)
    plot_rd_curves({k: [p for p in v if p[0] <= 2.0] for k, v in curves.items()}, args.out / "kodak_psnr.png",
                   title="Kodak (24 images): PSNR-RGB vs rate")
    plot_rd_curves({name: [p for p in _points(r["curve"], "ms_ssim") if p[0] <= 2.0]
                    for name, r in results["codecs"].items() if "curve" in r},
                   args.out / "kodak_msssim.png", ylabel="MS-SSIM", title="Kodak (24 images): MS-SSIM vs rate")
    print(_markdown(results))
    for model_id in learned:
        r = results["codecs"][model_id]
        print(f"{model_id}: all decodes bit-exact: {r['all_bit_exact']}; "
              f"max |file bpp / estimated bpp - 1| = {r['max_rate_gap_percent']:.3f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
