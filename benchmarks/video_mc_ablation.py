"""Ablations of the motion-compensated video codec (``video-mc``) on the first frames of a sequence.

- **what the residual fine-tuning buys**: the same codec with the image model itself as residual coder
  (the fine-tuning's starting point) against the trained residual coder;
- **motion bits**: the share of each file spent on the motion fields (re-estimated on the encoder's own
  reconstructions, which gives the fields the encoder coded: estimation is deterministic);
- **group of pictures**: GOP 10 against longer groups.

Every curve is decoded and checked bit-exact. Writes OUT/video_mc_ablation.json and .md.

    python benchmarks/video_mc_ablation.py --out benchmarks/results/video-mc --frames 32
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from video_rd import SEQUENCES, learned_curve  # noqa: E402

from neuralcodec.codecs.image.refinement import lambda_at  # noqa: E402
from neuralcodec.codecs.registry import load_codec  # noqa: E402
from neuralcodec.codecs.video.mc_export import export_mc_model  # noqa: E402
from neuralcodec.codecs.video.mc_model import MotionCompensatedVideoModel  # noqa: E402
from neuralcodec.codecs.video.motion import encode_motion, estimate_motion  # noqa: E402
from neuralcodec.entropy import SymbolEncoder  # noqa: E402
from neuralcodec.eval.bdrate import bd_rate_or_reason  # noqa: E402
from neuralcodec.media.video import open_video  # noqa: E402


def motion_share(model: str, frames: list[np.ndarray], info, gop: int, quality: float) -> dict:
    """Bytes of the motion fields and of the whole streams at ``quality``."""
    codec = load_codec(model)
    payload, stats = codec.encode_frames(frames, info, quality, gop, keep_reconstructions=True)
    level = codec.intra.level_of(quality)
    weight = codec.motion_rate_weight / lambda_at(codec.intra.image.config.lambdas, level) ** 0.5
    intra = set(stats["intra_frames"]) | set(range(0, len(frames), gop))
    motion_bytes, previous = 0, None
    for index in range(len(frames)):
        if index in intra:
            previous = None  # the next field is coded without a previous one
            continue
        field = estimate_motion(stats["reconstructions"][index - 1], frames[index], weight)
        encoder = SymbolEncoder()
        encode_motion(field, encoder, previous if payload.metadata.get("temporal_motion") else None)
        motion_bytes += len(encoder.finish())
        previous = field
    p_bytes = sum(b for i, b in enumerate(stats["frame_bytes"]) if i not in intra)
    return {"quality": quality, "motion_bytes": motion_bytes, "p_frame_bytes": p_bytes,
            "all_bytes": sum(stats["frame_bytes"]), "motion_share_of_p_frames": motion_bytes / p_bytes,
            "motion_share_of_file": motion_bytes / sum(stats["frame_bytes"])}


def _untrained_residual(model: str, path: Path) -> Path:
    """``model`` with its residual coder replaced by a copy of its image model (the fine-tuning's start)."""
    codec = load_codec(model)
    image = codec.model.image
    export_mc_model(MotionCompensatedVideoModel(codec.model.config, image, copy.deepcopy(image)), path,
                    f"{codec.model_id}-untrained")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="video-mc-vr9c")
    parser.add_argument("--sequence", default="BasketballPass", choices=sorted(SEQUENCES))
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--qualities", default="1,2,4,6")
    parser.add_argument("--gops", default="10,32")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    qualities = [float(q) for q in args.qualities.split(",")]
    path, fps = SEQUENCES[args.sequence]
    with open_video(path, fps=fps) as reader:
        info = reader.info
        frames = list(reader)[:args.frames]
    info = dataclasses.replace(info, frames=len(frames))
    curves = {}
    with tempfile.TemporaryDirectory() as work:
        untrained = _untrained_residual(args.model, Path(work) / "untrained.safetensors")
        curves["residual coder = image model (untrained), GOP 10"] = learned_curve(str(untrained), frames, info, 10,
                                                                                   qualities=qualities)
    for gop in (int(g) for g in args.gops.split(",")):
        curves[f"trained residual coder, GOP {gop}"] = learned_curve(args.model, frames, info, gop, qualities=qualities)
    reference = "trained residual coder, GOP 10"
    bd = {name: bd_rate_or_reason([(p["bpp"], p["psnr"]) for p in curves[reference]],
                                  [(p["bpp"], p["psnr"]) for p in points])
          for name, points in curves.items() if name != reference}
    shares = [motion_share(args.model, frames, info, 10, q) for q in qualities]
    results = {"sequence": args.sequence, "frames": len(frames), "model": args.model, "curves": curves,
               "bd_rate_percent_vs_trained_gop10": bd, "motion": shares}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "video_mc_ablation.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [f"## {args.sequence}, first {len(frames)} frames", "",
             "| variant | bpp / PSNR (dB) at qualities " + ", ".join(f"{q:g}" for q in qualities)
             + " | BD-rate vs trained, GOP 10 | all bit-exact |", "|---|---|---|---|"]
    for name, points in curves.items():
        cells = " · ".join(f"{p['bpp']:.4f} / {p['psnr']:.2f}" for p in points)
        value = bd.get(name)
        lines.append(f"| {name} | {cells} | {f'{value:+.1f}%' if isinstance(value, float) else value or '—'} | "
                     f"{all(p['bit_exact'] for p in points)} |")
    lines += ["", "| quality | motion bytes | P-frame bytes | motion share of P-frames | of the file |", "|---|---|---|---|---|"]
    lines += [f"| {s['quality']:g} | {s['motion_bytes']} | {s['p_frame_bytes']} | {100 * s['motion_share_of_p_frames']:.1f}% "
              f"| {100 * s['motion_share_of_file']:.1f}% |" for s in shares]
    (args.out / "video_mc_ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
