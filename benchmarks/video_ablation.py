"""Video codec ablations: what each prior and each training source is worth, in rate at equal quality.

Every model given as ``NAME=WEIGHTS`` codes the first ``--frames`` frames of each sequence at every
quality (GOP 10, encoder side only: decoding is bit-exact, as ``video_rd.py`` checks), next to the same
autoencoder coding every frame as an I-frame. Reported: bpp and PSNR per quality, BD-rate (PCHIP, PSNR)
of each model against frame-by-frame coding and against the reference model (the first one given).

    python benchmarks/video_ablation.py --out benchmarks/results/video \\
        full=runs/video/full-1000.safetensors no-temporal=runs/video/no-temporal/model.safetensors ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from neuralcodec.media.video import open_video
from neuralcodec.eval.bdrate import bd_rate_or_reason
from video_rd import SEQUENCES, learned_curve  # the script folder is on sys.path


def _psnr_curve(points: list[dict]) -> list[tuple[float, float]]:
    return [(p["bpp"], p["psnr"]) for p in points]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="NAME=WEIGHTS")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--gop", type=int, default=10)
    parser.add_argument("--sequences", default=",".join(SEQUENCES))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = dict(spec.split("=", 1) for spec in args.models)
    reference = args.models[0].split("=", 1)[0]
    results = {}
    for name in args.sequences.split(","):
        path, fps = SEQUENCES[name]
        with open_video(path, fps=fps) as reader:
            info = reader.info
            frames = [frame for _, frame in zip(range(args.frames), reader)]
        intra = learned_curve(models[reference], frames, info, 1, decode=False)
        # fixed groups of pictures: the rate of the P-frame priors themselves, never replaced by I-frames
        curves = {label: learned_curve(weights, frames, info, args.gop, decode=False, adaptive_intra=False)
                  for label, weights in models.items()}
        results[name] = {
            "frames": len(frames), "frame_by_frame": intra, "curves": curves,
            "bd_rate_vs_frame_by_frame": {k: bd_rate_or_reason(_psnr_curve(intra), _psnr_curve(v)) for k, v in curves.items()},
            "bd_rate_vs_reference": {k: bd_rate_or_reason(_psnr_curve(curves[reference]), _psnr_curve(v))
                                     for k, v in curves.items() if k != reference},
        }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "video_ablation.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = []
    for name, result in results.items():
        lines += [f"## {name}, first {result['frames']} frames, GOP {args.gop}", "",
                  f"| model | bpp at each quality, low → high | BD-rate vs frame-by-frame | BD-rate vs {reference} |", "|---|---|---|---|"]
        for label, points in result["curves"].items():
            cells = [result["bd_rate_vs_frame_by_frame"][label], result["bd_rate_vs_reference"].get(label, "reference")]
            cells = [f"{c:+.1f}%" if isinstance(c, float) else c for c in cells]
            rates = " · ".join(f"{p['bpp']:.3f}" for p in points)
            lines.append(f"| {label} | {rates} | {cells[0]} | {cells[1]} |")
        rates = " · ".join(f"{p['bpp']:.3f}" for p in result["frame_by_frame"])
        lines += [f"| frame-by-frame (GOP 1) | {rates} | — | — |", ""]
    (args.out / "video_ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
