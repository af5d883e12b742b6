"""Video rate-distortion: our video models against x264/x265 and frame-by-frame image coding.

On each evaluation sequence (never trained on): BasketballPass (416x240, 100 frames, 50 fps), Foreman
QCIF (10 frames) and Cisco 2-people (320x192, 9 frames), all at the same group of pictures:

- each video model given (``--models``; the first is the subject every BD-rate is of) at each quality;
- ``image frame-by-frame``: the first model at GOP 1 (every frame an I-frame: the all-intra curve);
- x264 and x265, presets medium and veryslow, CRF sweep, yuv420p converted by ffmpeg from the same RGB
  frames, PSNR and MS-SSIM measured in RGB on our side.

Rates are the whole .ncd file (header included) for our codecs and the raw bitstream for x26x, in bits
per pixel (over all frames). BD-rates (PCHIP) of the first model against each, on mean per-frame PSNR and
MS-SSIM. Writes OUT/video_rd.json, OUT/video_rd.md and one PSNR plot per sequence.

    python benchmarks/video_rd.py --out benchmarks/results/video-mc [--models video-mc-vr9c,video-st-vr9-n96]
        [--qualities 1,2,3] [--frames N] [--gop 10] [--no-frame-by-frame]

Ablations: ``benchmarks/video_ablation.py`` (video-st), ``benchmarks/video_mc_ablation.py`` (video-mc).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from neuralcodec import container
from neuralcodec.codecs.registry import load_codec
from neuralcodec.codecs.video.sequence import SequenceCodec
from neuralcodec.media.video import open_video
from neuralcodec.eval.bdrate import bd_rate_or_reason
from neuralcodec.metrics import ms_ssim, psnr
from neuralcodec.eval.plots import plot_rd_curves
from neuralcodec.eval.video_codecs import VIDEO_CODECS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
SEQUENCES = {"BasketballPass": (SHARED / "BasketballPass_416x240", Fraction(50)),
             "Foreman": (SHARED / "foreman_qcif_176x144_10f.y4m", None),
             "CiscoVT2people": (SHARED / "CiscoVT2people_320x192_9f.y4m", None)}
MS_SSIM_MIN_SIDE = 161


def _distortion(frames: list[np.ndarray], decoded: list[np.ndarray]) -> dict[str, float]:
    if len(frames) != len(decoded):
        raise RuntimeError(f"{len(decoded)} frames decoded for {len(frames)}")
    small = min(frames[0].shape[:2]) < MS_SSIM_MIN_SIDE  # five MS-SSIM scales need 161 px
    return {"psnr": float(np.mean([psnr(a, b) for a, b in zip(frames, decoded)])),
            "ms_ssim": None if small else float(np.mean([ms_ssim(a, b) for a, b in zip(frames, decoded)]))}


def learned_curve(model: str | SequenceCodec, frames: list[np.ndarray], info, gop: int, decode: bool = True,
                  adaptive_intra: bool = True, qualities: list[float] | None = None) -> list[dict]:
    """Our codec (a model id or .safetensors, or a codec) at every quality level of its model: whole-file bpp,
    distortion, and (with ``decode``) a check that decoding is bit-exact; without it, distortion is measured
    on the encoder's reconstructions. ``adaptive_intra``: as ``codec encode`` does, code a P-frame position
    as an I-frame when that is smaller."""
    codec = load_codec(model) if isinstance(model, str) else model
    points = []
    for quality in qualities or [float(q) for q in range(1, codec.intra.levels + 1)]:
        payload, stats = codec.encode_frames(frames, info, quality, gop, keep_reconstructions=True,
                                             adaptive_intra=adaptive_intra)
        size = len(container.write(payload))
        decoded = list(codec.decode_frames(payload)) if decode else stats["reconstructions"]
        exact = all(np.array_equal(a, b) for a, b in zip(decoded, stats["reconstructions"])) if decode else None
        pixels = info.width * info.height * len(frames)
        points.append({"quality": quality, "bpp": 8 * size / pixels, "bit_exact": exact,
                       "i_frame_bytes": int(sum(stats["frame_bytes"][::gop])),
                       "p_frame_bytes": int(sum(stats["frame_bytes"]) - sum(stats["frame_bytes"][::gop])),
                       "adaptive_i_frames": len(stats["intra_frames"]),
                       "encode_fps": len(frames) / stats["seconds"], **_distortion(frames, decoded)})
    return points


def classical_curve(name: str, frames: list[np.ndarray], fps: Fraction, gop: int) -> list[dict]:
    codec = VIDEO_CODECS[name]
    height, width = frames[0].shape[:2]
    points = []
    for crf in codec.crfs:
        data = codec.encode(frames, fps, crf, gop)
        decoded = codec.decode(data, height, width)
        points.append({"crf": crf, "bpp": 8 * len(data) / (width * height * len(frames)), **_distortion(frames, decoded)})
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", default="video-mc-vr9c,video-st-vr9-n96",
                        help="comma-separated video model ids or .safetensors; the first is the one measured against "
                             "every other curve")
    parser.add_argument("--gop", type=int, default=10)
    parser.add_argument("--frames", type=int, default=None, help="code only the first N frames of each sequence")
    parser.add_argument("--qualities", default=None, help="comma-separated qualities (default: every level)")
    parser.add_argument("--no-frame-by-frame", action="store_true",
                        help="skip the first model's all-intra curve (GOP 1)")
    parser.add_argument("--sequences", default=",".join(SEQUENCES))
    parser.add_argument("--classical", default=",".join(VIDEO_CODECS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = args.models.split(",")
    qualities = [float(q) for q in args.qualities.split(",")] if args.qualities else None
    results = {}
    for name in tqdm(args.sequences.split(","), desc="sequences"):
        path, fps = SEQUENCES[name]
        with open_video(path, fps=fps) as reader:
            info = reader.info
            frames = list(reader)[:args.frames]
        info = dataclasses.replace(info, frames=len(frames))
        curves = {_label(model): learned_curve(model, frames, info, args.gop, qualities=qualities) for model in models}
        subject = _label(models[0])
        if not args.no_frame_by_frame:  # the same reconstructions as GOP 1 decodes: checked by the curves above
            curves["image frame-by-frame"] = learned_curve(models[0], frames, info, 1, decode=False,
                                                           qualities=qualities)
        for codec in filter(None, args.classical.split(",")):
            curves[codec] = classical_curve(codec, frames, info.fps, args.gop)
        metrics = ("psnr", "ms_ssim") if curves[subject][0]["ms_ssim"] is not None else ("psnr",)
        bd = {metric: {other: bd_rate_or_reason([(p["bpp"], p[metric]) for p in curves[other]],
                                                [(p["bpp"], p[metric]) for p in curves[subject]])
                       for other in curves if other != subject} for metric in metrics}
        results[name] = {"frames": len(frames), "size": [info.width, info.height], "gop": args.gop,
                         "subject": subject, "curves": curves, "bd_rate_percent_vs": bd}
        plot_rd_curves({k: [(p["bpp"], p["psnr"]) for p in v] for k, v in curves.items()},
                       args.out / f"video_rd_{name}.png", ylabel="PSNR-RGB (dB)",
                       title=f"{name} ({len(frames)} frames, GOP {args.gop})")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "video_rd.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "video_rd.md").write_text(_markdown(results))
    print(_markdown(results))


def _label(model: str) -> str:
    """A curve's name: the model id, or a weights file's stem."""
    return Path(model).stem if model.endswith(".safetensors") else model


def _markdown(results: dict) -> str:
    lines = []
    for name, result in results.items():
        lines += [f"## {name} ({result['frames']} frames, {result['size'][0]}x{result['size'][1]}, GOP {result['gop']})",
                  "", f"| codec | bpp range | PSNR range (dB) | BD-rate of {result['subject']} vs it (PSNR) | (MS-SSIM) |",
                  "|---|---|---|---|---|"]
        for codec, points in result["curves"].items():
            bd = {m: result["bd_rate_percent_vs"].get(m, {}).get(codec) for m in ("psnr", "ms_ssim")}
            cells = [f"{v:+.1f}%" if isinstance(v, float) else (v or "—") for v in bd.values()]
            lines.append(f"| {codec} | {points[0]['bpp']:.3f} → {points[-1]['bpp']:.3f} | "
                         f"{points[0]['psnr']:.2f} → {points[-1]['psnr']:.2f} | {cells[0]} | {cells[1]} |")
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
