"""How many gain levels above the P-frames ``video-mc`` should code its I-frames, measured on training clips.

A sharper I-frame is a better reference for every P-frame that follows it, so it can pay for its own
extra bits. This sweeps the encoder's ``intra_level_boost`` on the six Vimeo-90k septuplets of the
training data (7 frames each, one group of pictures per clip; never the evaluation sequences) at the
given P-frame levels, and reports each boost's curve (bits per pixel over all frames, mean per-frame
RGB PSNR) and its BD-rate against boost 0. Writes OUT/video_mc_intra_level.json and .md.

    python benchmarks/video_mc_intra_level.py --out runs/video-mc-intra-level --boosts 0,0.5,1,1.5,2
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench_output import write_results
from neuralcodec.codecs.registry import load_codec
from neuralcodec.codecs.video.sequence import SequenceCodec
from neuralcodec.eval.bdrate import bd_rate_or_reason
from neuralcodec.media.images import list_images
from neuralcodec.media.video import VideoInfo, open_video

CLIPS = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "vimeo_septuplet_sample" / "sequences"


def training_clips(root: Path) -> list[list[np.ndarray]]:
    """The frames of every clip (a folder of frame images) under ``root``."""
    clips = []
    for folder in sorted({path.parent for path in list_images(root)}):
        with open_video(folder, fps=Fraction(25)) as reader:
            clips.append(list(reader))
    return clips


def boost_curve(codec: SequenceCodec, boost: float, clips: list[list[np.ndarray]], levels: list[float]) -> list[dict]:
    """(bpp, PSNR) of every clip coded as one group of pictures at each P-frame level, I-frames ``boost``
    levels higher."""
    codec.intra_level_boost = boost
    points = []
    for level in levels:
        bits, pixels, psnrs = 0, 0, []
        for frames in clips:
            height, width = frames[0].shape[:2]
            _, stats = codec.encode_frames(frames, VideoInfo(width, height, Fraction(25), len(frames)),
                                           quality=level + 1, gop=len(frames))
            bits += 8 * sum(stats["frame_bytes"])
            pixels += width * height * len(frames)
            psnrs += stats["psnr"]
        points.append({"level": level, "bpp": bits / pixels, "psnr": float(np.mean(psnrs))})
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="video-mc-vr9c")
    parser.add_argument("--clips", type=Path, default=CLIPS)
    parser.add_argument("--boosts", default="0,0.5,1,1.5,2")
    parser.add_argument("--levels", default="1,2.5,4,5.5", help="P-frame gain levels (quality - 1)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clips = training_clips(args.clips)
    levels = [float(v) for v in args.levels.split(",")]
    codec = load_codec(args.model)
    curves = {float(b): boost_curve(codec, float(b), clips, levels)
              for b in tqdm(args.boosts.split(","), desc="boosts")}
    anchor = curves[min(curves)]
    results = {"model": args.model, "clips": len(clips), "frames": sum(map(len, clips)), "levels": levels,
               "curves": {str(b): c for b, c in curves.items()},
               "bd_rate_percent_vs_lowest_boost": {
                   str(b): bd_rate_or_reason([(p["bpp"], p["psnr"]) for p in anchor],
                                             [(p["bpp"], p["psnr"]) for p in c]) for b, c in curves.items()}}
    lines = [f"## I-frame level boost, {args.model}: {len(clips)} training clips, {results['frames']} frames",
             "", f"| boost | bpp / PSNR at P-frame levels {', '.join(map(str, levels))} | BD-rate vs boost {min(curves)} |",
             "|---|---|---|"]
    for boost, curve in curves.items():
        cells = " · ".join(f"{p['bpp']:.4f} / {p['psnr']:.2f}" for p in curve)
        lines.append(f"| {boost} | {cells} | {results['bd_rate_percent_vs_lowest_boost'][str(boost)]} |")
    write_results(args.out, "video_mc_intra_level", results, lines)


if __name__ == "__main__":
    main()
