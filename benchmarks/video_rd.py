"""Video rate-distortion: the spatiotemporal codec against x264/x265 and frame-by-frame image coding.

On each evaluation sequence (never trained on): BasketballPass (416x240, 100 frames, 50 fps), Foreman
QCIF (10 frames) and Cisco 2-people (320x192, 9 frames), all at the same group of pictures:

- ``video-st``: the shipped video model at each quality level (and the ablation models given with
  ``--ablation NAME=WEIGHTS``: e.g. without temporal prior, without spatial context);
- ``image frame-by-frame``: the same autoencoder coding every frame as an I-frame (the video codec at
  GOP 1; identical reconstructions, so the rate difference is the spatiotemporal entropy model's);
- x264 and x265, presets medium and veryslow, CRF sweep, yuv420p converted by ffmpeg from the same RGB
  frames, PSNR and MS-SSIM measured in RGB on our side.

Rates are the whole .ncd file (header included) for our codecs and the raw bitstream for x26x, in bits
per pixel (over all frames). BD-rates (PCHIP) of video-st against each, on mean per-frame PSNR and
MS-SSIM. Writes OUT/video_rd.json, OUT/video_rd.md and one PSNR plot per sequence.

    python benchmarks/video_rd.py --out benchmarks/results/video [--model video-st-n96] \\
        [--ablation no-temporal=runs/video/no-temporal/model.safetensors ...]
"""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from neuralcodec import container
from neuralcodec.codecs.registry import load_codec
from neuralcodec.codecs.video_io import open_video
from neuralcodec.eval.bdrate import bd_rate_or_reason
from neuralcodec.eval.metrics import ms_ssim, psnr
from neuralcodec.eval.plots import plot_rd_curves
from neuralcodec.eval.video_codecs import VIDEO_CODECS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
SEQUENCES = {"BasketballPass": (SHARED / "BasketballPass_416x240", Fraction(50)),
             "Foreman": (SHARED / "foreman_qcif_176x144_10f.y4m", None),
             "CiscoVT2people": (SHARED / "CiscoVT2people_320x192_9f.y4m", None)}
QUALITIES = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)


def _distortion(frames: list[np.ndarray], decoded: list[np.ndarray]) -> dict[str, float]:
    if len(frames) != len(decoded):
        raise RuntimeError(f"{len(decoded)} frames decoded for {len(frames)}")
    return {"psnr": float(np.mean([psnr(a, b) for a, b in zip(frames, decoded)])),
            "ms_ssim": float(np.mean([ms_ssim(a, b) for a, b in zip(frames, decoded)]))}


def learned_curve(model: str, frames: list[np.ndarray], info, gop: int, decode: bool = True) -> list[dict]:
    """Our codec at every quality: whole-file bpp, distortion, and (with ``decode``) a check that decoding
    is bit-exact; without it, distortion is measured on the encoder's reconstructions."""
    codec = load_codec(model)
    points = []
    for quality in QUALITIES:
        payload, stats = codec.encode_frames(frames, info, quality, gop, keep_reconstructions=True)
        size = len(container.write(payload))
        decoded = list(codec.decode_frames(payload)) if decode else stats["reconstructions"]
        exact = all(np.array_equal(a, b) for a, b in zip(decoded, stats["reconstructions"])) if decode else None
        pixels = info.width * info.height * len(frames)
        points.append({"quality": quality, "bpp": 8 * size / pixels, "bit_exact": exact,
                       "i_frame_bytes": int(sum(stats["frame_bytes"][::gop])),
                       "p_frame_bytes": int(sum(stats["frame_bytes"]) - sum(stats["frame_bytes"][::gop])),
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
    parser.add_argument("--model", default=None, help="video model id or .safetensors (default: the shipped one)")
    parser.add_argument("--ablation", action="append", default=[], metavar="NAME=WEIGHTS",
                        help="another video model (e.g. no-temporal=PATH), run with the shipped one on the first "
                             "--ablation-frames frames of each sequence, encoder side only")
    parser.add_argument("--ablation-frames", type=int, default=30)
    parser.add_argument("--gop", type=int, default=10)
    parser.add_argument("--sequences", default=",".join(SEQUENCES))
    parser.add_argument("--classical", default=",".join(VIDEO_CODECS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = args.model or "video-st"
    learned = {"video-st": model, **dict(spec.split("=", 1) for spec in args.ablation)}
    if len(learned) <= len(args.ablation):
        parser.error("--ablation names must be unique and not 'video-st'")
    results = {}
    for name in tqdm(args.sequences.split(","), desc="sequences"):
        path, fps = SEQUENCES[name]
        with open_video(path, fps=fps) as reader:
            info = reader.info
            frames = list(reader)
        curves = {"video-st": learned_curve(model, frames, info, args.gop)}
        curves["image frame-by-frame"] = learned_curve(model, frames, info, 1, decode=False)  # I-frames: checked above
        if args.ablation:
            head = frames[:args.ablation_frames]
            ablations = {label: learned_curve(weights, head, info, args.gop, decode=False)
                         for label, weights in learned.items()}
            results.setdefault("ablations", {})[name] = {
                "frames": len(head), "curves": ablations,
                "bd_rate_percent_vs_video_st": {label: bd_rate_or_reason(
                    [(p["bpp"], p["psnr"]) for p in ablations["video-st"]], [(p["bpp"], p["psnr"]) for p in points])
                    for label, points in ablations.items() if label != "video-st"}}
        for codec in args.classical.split(","):
            curves[codec] = classical_curve(codec, frames, info.fps, args.gop)
        bd = {metric: {other: bd_rate_or_reason([(p["bpp"], p[metric]) for p in curves[other]],
                                                [(p["bpp"], p[metric]) for p in curves["video-st"]])
                       for other in curves if other != "video-st"} for metric in ("psnr", "ms_ssim")}
        results[name] = {"frames": len(frames), "size": [info.width, info.height], "gop": args.gop,
                         "curves": curves, "bd_rate_percent_of_video_st_vs": bd}
        plot_rd_curves({k: [(p["bpp"], p["psnr"]) for p in v] for k, v in curves.items()},
                       args.out / f"video_rd_{name}.png", ylabel="PSNR-RGB (dB)",
                       title=f"{name} ({len(frames)} frames, GOP {args.gop})")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "video_rd.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "video_rd.md").write_text(_markdown(results))
    print(_markdown(results))


def _markdown(results: dict) -> str:
    lines = []
    for name, result in results.items():
        if name == "ablations":
            continue
        lines += [f"## {name} ({result['frames']} frames, {result['size'][0]}x{result['size'][1]}, GOP {result['gop']})",
                  "", "| codec | bpp range | PSNR range (dB) | BD-rate of video-st vs it (PSNR) | (MS-SSIM) |",
                  "|---|---|---|---|---|"]
        for codec, points in result["curves"].items():
            bd = {m: result["bd_rate_percent_of_video_st_vs"][m].get(codec) for m in ("psnr", "ms_ssim")}
            cells = [f"{v:+.1f}%" if isinstance(v, float) else (v or "—") for v in bd.values()]
            lines.append(f"| {codec} | {points[0]['bpp']:.3f} → {points[-1]['bpp']:.3f} | "
                         f"{points[0]['psnr']:.2f} → {points[-1]['psnr']:.2f} | {cells[0]} | {cells[1]} |")
        lines.append("")
    for name, ablation in results.get("ablations", {}).items():
        lines += [f"## Ablations on {name} (first {ablation['frames']} frames, encoder side)", "",
                  "| model | bpp at quality 1 → 6 | PSNR at quality 1 → 6 | BD-rate vs video-st (PSNR) |", "|---|---|---|---|"]
        for label, points in ablation["curves"].items():
            bd = ablation["bd_rate_percent_vs_video_st"].get(label, "anchor")
            bd = f"{bd:+.1f}%" if isinstance(bd, float) else bd
            rates = " · ".join(f"{p['bpp']:.3f}" for p in points)
            psnrs = " · ".join(f"{p['psnr']:.2f}" for p in points)
            lines.append(f"| {label} | {rates} | {psnrs} | {bd} |")
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
