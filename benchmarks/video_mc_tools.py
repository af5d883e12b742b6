"""What each coding tool of ``video-mc`` buys: overlapped block motion compensation and cropped latents,
each on and off, on the same model.

Variants (the encoder's switches ``overlaps_motion`` and ``crops_latents``; decoders follow the file's
flags): block motion with whole padded latents (the previous release), each tool alone, both (today's
encoder). Measured on the six Vimeo-90k training clips (one group of pictures each; 448x256, so there is
nothing to crop: only the motion tools differ) and on the evaluation sequences (first ``--frames`` frames,
GOP 10). Curves as ``video_rd.py`` measures them (whole files, mean per-frame RGB PSNR, every decode
checked bit-exact); BD-rates (PCHIP) against the previous release. Writes OUT/video_mc_tools.json and .md.

    python benchmarks/video_mc_tools.py --out runs/video-mc-tools --frames 20
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_output import write_results  # noqa: E402
from video_mc_intra_level import CLIPS, training_clips  # noqa: E402
from video_rd import SEQUENCES, learned_curve  # noqa: E402

from neuralcodec.codecs.registry import load_codec  # noqa: E402
from neuralcodec.eval.bdrate import bd_rate_or_reason  # noqa: E402
from neuralcodec.media.video import VideoInfo, open_video  # noqa: E402

VARIANTS = {"block motion, whole latents": (False, False), "overlapped motion": (True, False),
            "cropped latents": (False, True), "overlapped motion + cropped latents": (True, True)}
BASE = "block motion, whole latents"


def clip_set_curve(codec, clips: list[list[np.ndarray]], qualities: list[float]) -> list[dict]:
    """One curve over several clips (each one group of pictures): total bits over total pixels, mean PSNR."""
    curves = [learned_curve(codec, frames, VideoInfo(frames[0].shape[1], frames[0].shape[0], Fraction(25),
                                                     len(frames)), len(frames), qualities=qualities)
              for frames in clips]
    pixels = [frames[0].shape[0] * frames[0].shape[1] * len(frames) for frames in clips]
    return [{"quality": q, "bpp": sum(c[i]["bpp"] * n for c, n in zip(curves, pixels)) / sum(pixels),
             "psnr": float(np.mean([c[i]["psnr"] for c in curves])),
             "bit_exact": all(c[i]["bit_exact"] for c in curves)} for i, q in enumerate(qualities)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="video-mc-vr9c")
    parser.add_argument("--frames", type=int, default=20, help="first N frames of each evaluation sequence")
    parser.add_argument("--qualities", default="1,2,4,6")
    parser.add_argument("--sets", default="training clips," + ",".join(SEQUENCES))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    qualities = [float(q) for q in args.qualities.split(",")]
    codec = load_codec(args.model)
    results: dict = {"model": args.model, "qualities": qualities, "frames": args.frames, "sets": {}}
    lines = [f"## {args.model}: coding tools on and off (BD-rate vs {BASE})", "",
             "| set | variant | bpp / PSNR (dB) at qualities " + ", ".join(f"{q:g}" for q in qualities)
             + " | BD-rate | all bit-exact |", "|---|---|---|---|---|"]
    for name in tqdm(args.sets.split(","), desc="sets"):
        if name == "training clips":
            clips = training_clips(CLIPS)
            variants = {v: t for v, t in VARIANTS.items() if not t[1]}  # 448x256: nothing to crop
        else:
            path, fps = SEQUENCES[name]
            with open_video(path, fps=fps) as reader:
                info = reader.info
                frames = list(reader)[:args.frames]
            clips, info = None, dataclasses.replace(info, frames=len(frames))
            variants = VARIANTS
        curves = {}
        for variant, (overlapped, cropped) in variants.items():
            codec.overlaps_motion, codec.crops_latents = overlapped, cropped
            curves[variant] = (clip_set_curve(codec, clips, qualities) if clips is not None
                               else learned_curve(codec, frames, info, 10, qualities=qualities))
        base = [(p["bpp"], p["psnr"]) for p in curves[BASE]]
        bd = {v: bd_rate_or_reason(base, [(p["bpp"], p["psnr"]) for p in c]) for v, c in curves.items() if v != BASE}
        results["sets"][name] = {"curves": curves, "bd_rate_percent_vs_base": bd}
        for variant, points in curves.items():
            cells = " · ".join(f"{p['bpp']:.4f} / {p['psnr']:.2f}" for p in points)
            value = bd.get(variant)
            lines.append(f"| {name} | {variant} | {cells} | {f'{value:+.2f}%' if isinstance(value, float) else value or '—'} "
                         f"| {all(p['bit_exact'] for p in points)} |")
    write_results(args.out, "video_mc_tools", results, lines)


if __name__ == "__main__":
    main()
