"""What each coding tool of ``video-mc`` buys, each on and off on the same model.

Three sets of tools (``--tools``; the encoder's switches, decoders follow the file's flags):

- ``motion``: overlapped block motion compensation (``overlaps_motion``) and cropped latents
  (``crops_latents``), against block motion with whole padded latents;
- ``prediction``: the per-frame prediction filter (``filters_prediction``) and I-frames coded by the image
  context model (``intra_context``), against the encoder without them (overlapped motion, cropped latents);
- ``temporal``: a P-frame's motion field (``codes_motion_temporally``) and residual hyper-latent
  (``codes_hyper_latent_temporally``) coded with the previous P-frame's as context, against the encoder
  without them, at the motion rate weight chosen for spatial coding (0.68); both with today's (0.5); and
  today's encoder, which also chooses each vector by its estimated code length under the temporal context
  (``chooses_vectors_by_code_length``).

Sets (``--sets``): the six Vimeo-90k training clips, 8 synthetic camera-motion clips and 8 synthetic
moving-object clips made from the training photos (7 frames of 256x256 each; one group of pictures per
clip; these are where tools are chosen), and the evaluation sequences (first ``--frames`` frames, GOP 10).
Curves as ``video_rd.py`` measures them (whole files, mean per-frame RGB PSNR, every decode checked
bit-exact); BD-rates (PCHIP) against the first variant. Writes OUT/video_mc_tools.json and .md.

    python benchmarks/video_mc_tools.py --out runs/video-mc-tools --tools prediction --frames 20
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
from neuralcodec.codecs.video.data import synthetic_clips, with_moving_objects  # noqa: E402
from neuralcodec.eval.bdrate import bd_rate_or_reason  # noqa: E402
from neuralcodec.media.images import list_images, read_rgb  # noqa: E402
from neuralcodec.media.video import VideoInfo, open_video  # noqa: E402

PHOTOS = CLIPS.parents[2] / "train-images"
TRAINING_SETS = ("training clips", "synthetic motion", "moving objects")


def _temporal(motion: bool, hyper_latent: bool, rate_weight: float = 0.68, by_code_length: bool = False) -> dict:
    """The switches of a ``temporal`` variant."""
    return {"codes_motion_temporally": motion, "codes_hyper_latent_temporally": hyper_latent,
            "motion_rate_weight": rate_weight, "chooses_vectors_by_code_length": by_code_length}


TOOLS = {
    "motion": {"block motion, whole latents": {"overlaps_motion": False, "crops_latents": False},
               "overlapped motion": {"overlaps_motion": True, "crops_latents": False},
               "cropped latents": {"overlaps_motion": False, "crops_latents": True},
               "overlapped motion + cropped latents": {"overlaps_motion": True, "crops_latents": True}},
    "prediction": {"overlapped motion + cropped latents": {"filters_prediction": False, "intra_context": False},
                   "+ prediction filter": {"filters_prediction": True, "intra_context": False},
                   "+ context-model I-frames": {"filters_prediction": False, "intra_context": True},
                   "+ both": {"filters_prediction": True, "intra_context": True}},
    "temporal": {"spatial contexts": _temporal(False, False),
                 "+ temporal motion context": _temporal(True, False),
                 "+ temporal hyper-latent context": _temporal(False, True),
                 "+ both": _temporal(True, True),
                 "+ both, motion rate weight 0.5": _temporal(True, True, 0.5),
                 "+ vectors chosen by code length": _temporal(True, True, 0.5, True)},
}
"""Variants of each tool set: the codec attributes they set (the first variant is the baseline). Tools
not named keep today's encoder's setting; ``intra_context`` switches the codec's context entry."""


def synthetic_set(name: str, count: int = 8) -> list[list[np.ndarray]]:
    """``count`` 7-frame 256x256 clips from the training photos: a moving camera ("synthetic motion"), or
    that with three objects crossing it ("moving objects")."""
    seed = 11 if name == "synthetic motion" else 12
    clips = synthetic_clips(PHOTOS, count, 7, 256, seed=seed)
    if name == "synthetic motion":
        return [list(clip) for clip in clips]
    photos = [read_rgb(path) for path in list_images(PHOTOS)]
    rng = np.random.default_rng(seed)
    return [list(with_moving_objects(clip, photos, 3, rng)) for clip in clips]


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
    parser.add_argument("--tools", choices=sorted(TOOLS), default="prediction")
    parser.add_argument("--frames", type=int, default=20, help="first N frames of each evaluation sequence")
    parser.add_argument("--qualities", default="1,2,4,6")
    parser.add_argument("--sets", default=",".join((*TRAINING_SETS, *SEQUENCES)))
    parser.add_argument("--variants", help="only these variants of the tool set (separated by ';', as their "
                                           "names hold commas; the first is the BD-rate anchor); default: all")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    qualities = [float(q) for q in args.qualities.split(",")]
    codec = load_codec(args.model)
    intra_context = codec.intra_context
    variants = TOOLS[args.tools]
    if args.variants:
        unknown = [v for v in args.variants.split(";") if v not in variants]
        if unknown:
            parser.error(f"unknown variants {unknown}; {args.tools} has {list(variants)}")
        variants = {v: variants[v] for v in args.variants.split(";")}
    base = next(iter(variants))
    results: dict = {"model": args.model, "tools": args.tools, "qualities": qualities, "frames": args.frames,
                     "sets": {}}
    lines = [f"## {args.model}: coding tools on and off (BD-rate vs {base})", "",
             "| set | variant | bpp / PSNR (dB) at qualities " + ", ".join(f"{q:g}" for q in qualities)
             + " | BD-rate | all bit-exact |", "|---|---|---|---|---|"]
    for name in tqdm(args.sets.split(","), desc="sets"):
        if name in TRAINING_SETS:
            clips = training_clips(CLIPS) if name == "training clips" else synthetic_set(name)
            cropping = any(clip[0].shape[0] % 64 or clip[0].shape[1] % 64 for clip in clips)
        else:
            path, fps = SEQUENCES[name]
            with open_video(path, fps=fps) as reader:
                info = reader.info
                frames = list(reader)[:args.frames]
            clips, info, cropping = None, dataclasses.replace(info, frames=len(frames)), True
        curves = {}
        for variant, switches in variants.items():
            if not cropping and switches.get("crops_latents"):
                continue  # nothing to crop: the same files as without
            for attribute, value in switches.items():
                setattr(codec, attribute, (intra_context if value else None) if attribute == "intra_context" else value)
            curves[variant] = (clip_set_curve(codec, clips, qualities) if clips is not None
                               else learned_curve(codec, frames, info, 10, qualities=qualities))
        anchor = [(p["bpp"], p["psnr"]) for p in curves[base]]
        bd = {v: bd_rate_or_reason(anchor, [(p["bpp"], p["psnr"]) for p in c]) for v, c in curves.items() if v != base}
        results["sets"][name] = {"curves": curves, "bd_rate_percent_vs_base": bd}
        for variant, points in curves.items():
            cells = " · ".join(f"{p['bpp']:.4f} / {p['psnr']:.2f}" for p in points)
            value = bd.get(variant)
            lines.append(f"| {name} | {variant} | {cells} | {f'{value:+.2f}%' if isinstance(value, float) else value or '—'} "
                         f"| {all(p['bit_exact'] for p in points)} |")
    write_results(args.out, "video_mc_tools", results, lines)


if __name__ == "__main__":
    main()
