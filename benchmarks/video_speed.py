"""Video codec speed and memory: frames per second at 416x240 and peak memory against video length.

Each measurement runs in a fresh subprocess (so peak RSS is its own): `codec encode` / `codec decode` of
the first N frames of BasketballPass written as a Y4M file, for N = 20 and N = 100 (memory must stay flat:
frames are streamed), with each video model given (GOP 10, quality 3), the first at GOP 1 too (image
frame-by-frame), and x264 medium through ffmpeg as the peer whose speed the ratios are against, all in the same run.

    python benchmarks/video_speed.py --out benchmarks/results/video [--models ID_OR_PATH,...] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"


_PEAK_OF_CHILD = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
                  "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def _measured(command: list[str], threads: int) -> dict:
    """Wall time and peak RSS (MiB) of ``command``, run under a fresh wrapper process so that the peak is its own."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PEAK_OF_CHILD, *command], check=True, env=env,
                          capture_output=True, text=True)
    return {"seconds": time.perf_counter() - started, "peak_rss_mib": int(done.stdout.split()[-1]) / 1024}


def _write_y4m(frames_dir: Path, count: int, target: Path) -> None:
    from neuralcodec.media.video import open_video, open_video_writer

    with open_video(frames_dir, fps=Fraction(50)) as reader, open_video_writer(target, reader.info) as writer:
        for index, frame in enumerate(reader):
            if index == count:
                break
            writer.write(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", default="video-mc-vr9c,video-st-vr9-n96",
                        help="comma-separated video model ids or .safetensors, each measured at GOP 10; the first "
                             "is also measured at GOP 1 (image frame-by-frame) and compared with the others")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    codec = [sys.executable, "-m", "neuralcodec.cli"]
    models = args.models.split(",")
    labels = {model: Path(model).stem for model in models}
    results = {"threads": args.threads, "size": "416x240", "runs": {}}
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        for count in (20, 100):
            source = work / f"clip{count}.y4m"
            _write_y4m(SHARED / "BasketballPass_416x240", count, source)
            settings = [(f"{labels[m]} GOP 10", m, 10) for m in models]
            settings.append((f"{labels[models[0]]} frame-by-frame (GOP 1)", models[0], 1))
            for label, model, gop in settings:
                coded, decoded = work / "c.ncd", work / "d.y4m"
                encode = _measured([*codec, "encode", str(source), str(coded), "--model", model, "--gop", str(gop),
                                    "--quality", "3"], args.threads)
                decode = _measured([*codec, "decode", str(coded), str(decoded)], args.threads)
                results["runs"][f"{label}, {count} frames"] = {
                    "frames": count, "encode_fps": count / encode["seconds"], "decode_fps": count / decode["seconds"],
                    "encode_peak_rss_mib": encode["peak_rss_mib"], "decode_peak_rss_mib": decode["peak_rss_mib"]}
                decoded.unlink()
            x264 = _measured(["ffmpeg", "-v", "error", "-y", "-threads", str(args.threads), "-i", str(source),
                              "-c:v", "libx264", "-preset", "medium", "-crf", "30", "-g", "10", str(work / "x.mp4")],
                             args.threads)
            results["runs"][f"x264 medium, {count} frames"] = {"frames": count,
                                                                "encode_fps": count / x264["seconds"]}
    runs = results["runs"]
    first = f"{labels[models[0]]} GOP 10"
    ratios = {f"{first} encode fps / x264 medium (100 frames)": runs[f"{first}, 100 frames"]["encode_fps"]
              / runs["x264 medium, 100 frames"]["encode_fps"],
              f"{first} encode peak RSS 100 / 20 frames": runs[f"{first}, 100 frames"]["encode_peak_rss_mib"]
              / runs[f"{first}, 20 frames"]["encode_peak_rss_mib"],
              f"{first} decode peak RSS 100 / 20 frames": runs[f"{first}, 100 frames"]["decode_peak_rss_mib"]
              / runs[f"{first}, 20 frames"]["decode_peak_rss_mib"]}
    for model in models[1:]:
        other = f"{labels[model]} GOP 10, 100 frames"
        for what in ("encode_fps", "decode_fps", "decode_peak_rss_mib"):
            ratios[f"{first} / {labels[model]} {what} (100 frames)"] = runs[f"{first}, 100 frames"][what] / runs[other][what]
    results["ratios"] = ratios
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "video_speed.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
