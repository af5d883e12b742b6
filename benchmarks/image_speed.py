"""CPU (and GPU when present) encode/decode time of a 768x512 image: neuralcodec's hyperprior against
compressai's bmshj2018 hyperprior (ScaleHyperprior) and mean-scale hyperprior at the same widths, in
one run, as ratios. Random weights (timing only); median of ``--repeats`` runs after a warm-up.

    python benchmarks/image_speed.py [--n 96 --m 128] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from compressai.models import MeanScaleHyperprior, ScaleHyperprior

from neuralcodec.codecs.image.codec import ImageHyperpriorCodec
from neuralcodec.codecs.image.model import HyperpriorConfig, ImageHyperprior


def _sample(device: str) -> torch.Tensor:
    from skimage import data
    from skimage.transform import resize

    image = resize(data.astronaut(), (512, 768), anti_aliasing=True)
    return torch.from_numpy(image).permute(2, 0, 1)[None].float().to(device)


def median_time(fn, repeats: int, device: str) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _ours(n: int, m: int, device: str, mean_scale: bool = True) -> ImageHyperpriorCodec:
    torch.manual_seed(0)
    model = ImageHyperprior(HyperpriorConfig(n=n, m=m, mean_scale=mean_scale)).eval()
    model.entropy_bottleneck.build_tables()
    return ImageHyperpriorCodec(model, "speed-test", b"", device)


def _time_ours(n: int, m: int, x: torch.Tensor, repeats: int, device: str, mean_scale: bool) -> dict:
    codec = _ours(n, m, device, mean_scale)
    payload = codec.compress(x, 3.0, reconstruct=False)[0]
    return {
        "encode_s": median_time(lambda: codec.compress(x, 3.0, reconstruct=False), repeats, device),
        "decode_s": median_time(lambda: codec.decompress(payload), repeats, device),
    }


def _time_compressai(cls: type, n: int, m: int, x: torch.Tensor, repeats: int, device: str) -> dict:
    torch.manual_seed(0)
    net = cls(N=n, M=m).eval().to(device)
    net.update(force=True)
    out = net.compress(x)
    return {
        "encode_s": median_time(lambda: net.compress(x), repeats, device),
        "decode_s": median_time(lambda: net.decompress(out["strings"], out["shape"]), repeats, device),
    }


PAIRS = (("neuralcodec scale hyperprior", "compressai bmshj2018-hyperprior"),
         ("neuralcodec mean-scale hyperprior", "compressai mean-scale hyperprior"))
"""Each of our variants against compressai's model of the same architecture."""


def run(n: int, m: int, repeats: int, device: str) -> dict:
    x = _sample(device)
    with torch.no_grad():
        results = {
            "neuralcodec scale hyperprior": _time_ours(n, m, x, repeats, device, mean_scale=False),
            "compressai bmshj2018-hyperprior": _time_compressai(ScaleHyperprior, n, m, x, repeats, device),
            "neuralcodec mean-scale hyperprior": _time_ours(n, m, x, repeats, device, mean_scale=True),
            "compressai mean-scale hyperprior": _time_compressai(MeanScaleHyperprior, n, m, x, repeats, device),
        }
    for ours, peer in PAIRS:
        for step in ("encode", "decode"):
            results[peer][f"{step}_ratio_ours_over_this"] = results[ours][f"{step}_s"] / results[peer][f"{step}_s"]
            results[ours][f"{step}_ratio_ours_over_this"] = 1.0
    return {"device": device, "threads": torch.get_num_threads(), "n": n, "m": m, "image": "768x512", "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=96)
    parser.add_argument("--m", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    reports = [run(args.n, args.m, args.repeats, "cpu")]
    if torch.cuda.is_available():
        reports.append(run(args.n, args.m, args.repeats, "cuda"))
    for report in reports:
        print(f"\n{report['device']} ({report['threads']} threads), N={report['n']} M={report['m']}, {report['image']}")
        print(f"{'codec':<36}{'encode s':>10}{'decode s':>10}{'ours/this enc':>15}{'ours/this dec':>15}")
        for name, r in report["results"].items():
            print(f"{name:<36}{r['encode_s']:>10.3f}{r['decode_s']:>10.3f}"
                  f"{r['encode_ratio_ours_over_this']:>15.2f}{r['decode_ratio_ours_over_this']:>15.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(reports, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
