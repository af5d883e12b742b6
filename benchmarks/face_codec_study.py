"""Issue 7 study: face recognition vs bpp for JPEG, HEVC intra, an MSE-fine-tuned face codec and the
task-aware (identity-preserving) one, with the recognizer used in training and an unseen one.

For each recognizer it runs `codec eval --task face-id` on the held-out ORL subjects 29-40 (resumable
cache under OUT/<recognizer>/), then reports, for accuracy-loss budgets of 1 and 5 points (and for the
TAR at 1% FAR), the lowest bpp each codec needs and the task-aware codec's bpp relative to HEVC and to
the MSE codec. It also tiles one held-out face coded by each codec at about the same bpp.

    python benchmarks/face_codec_study.py --ipr faces-ipr --mse faces-mse --out benchmarks/results/faces-ipr
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from neuralcodec.eval.adapters import image_adapter
from neuralcodec.eval.bdrate import rate_at_quality
from neuralcodec.eval.measure import measure_image
from neuralcodec.eval.runner import evaluate
from neuralcodec.eval.tasks.faces import FaceIdentificationTask

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SWEEPS = {"jpeg": [1, 3, 5, 8, 12, 20, 30, 45, 60, 75, 90], "hevc": [51, 48, 45, 42, 39, 36, 33, 30, 27, 24]}
BUDGETS = (0.01, 0.05)


def _rates(curve: list[dict], key: str, target: float) -> float | None:
    return rate_at_quality([(p["bpp"], p["task"][key]) for p in curve], target)


def headline(result: dict, ipr: str, mse: str) -> dict:
    """Per metric and budget: each codec's lowest bpp within the budget and the IPR codec's ratios."""
    reference = result["task"]["uncompressed"]
    table = {}
    for key in ("accuracy", "tar"):
        for budget in BUDGETS:
            target = reference[key] - budget
            rates = {name: _rates(curve, key, target) for name, curve in result["curves"].items()}
            ratio = {f"ipr_vs_{other}": (rates[ipr] / rates[name] if rates[ipr] and rates[name] else None)
                     for other, name in (("hevc", "hevc"), ("mse", mse))}
            table[f"{key} >= uncompressed - {budget:g} ({target:.4f})"] = {"bpp": rates, **ratio}
    return table


def comparison_tile(face: np.ndarray, codecs: dict[str, object], target_bpp: float, path: Path) -> dict:
    """Original and each codec's decoding at the setting whose bpp is closest to ``target_bpp``, side by side."""
    panels, captions, chosen = [face], ["original"], {}
    for label, adapter in codecs.items():
        trials = [(measure_image(adapter, face, q), q) for q in adapter.qualities]
        (measured, decoded), quality = min(trials, key=lambda t: abs(t[0][0]["bpp"] - target_bpp))
        panels.append(decoded)
        captions.append(f"{label} {measured['bpp']:.3f} bpp")
        chosen[label] = {"quality": quality, "bpp": measured["bpp"], "psnr": measured["psnr"]}
    scale, margin = 3, 22
    height, width = face.shape[0] * scale, face.shape[1] * scale
    canvas = Image.new("L", (len(panels) * (width + 6), height + margin), 255)
    draw = ImageDraw.Draw(canvas)
    for index, (panel, caption) in enumerate(zip(panels, captions)):
        canvas.paste(Image.fromarray(panel).resize((width, height), Image.NEAREST), (index * (width + 6), margin))
        draw.text((index * (width + 6) + 2, 4), caption, fill=0)
    canvas.save(path)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ipr", required=True, help="task-aware face codec (model id or .safetensors)")
    parser.add_argument("--mse", required=True, help="MSE-only control codec (model id or .safetensors)")
    parser.add_argument("--recognizers", default="face-embedder-orl,face-embedder-orl-residual",
                        help="comma-separated face embedders: the one used in training first, then unseen ones")
    parser.add_argument("--faces", type=Path, default=SHARED / "faces" / "orl")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    ipr, mse = image_adapter(args.ipr), image_adapter(args.mse)
    summary = {}
    for recognizer in args.recognizers.split(","):
        task = FaceIdentificationTask(recognizer)
        result = evaluate(["jpeg", "hevc", args.mse, args.ipr], args.faces, args.out / recognizer, task=task,
                          qualities=SWEEPS)
        summary[recognizer] = {"uncompressed": result["task"]["uncompressed"],
                               "headline": headline(result, ipr.name, mse.name)}
    face = np.asarray(Image.open(args.faces / "s33" / "5.png"))
    target = float(np.median([measure_image(ipr, face, q)[0]["bpp"] for q in ipr.qualities[:2]]))
    summary["visual_comparison"] = comparison_tile(
        face, {"JPEG": image_adapter("jpeg"), "HEVC": image_adapter("hevc"), "MSE codec": mse, "IPR codec": ipr},
        target, args.out / "visual_comparison.png")
    (args.out / "study.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
