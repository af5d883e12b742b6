"""SSIM and MS-SSIM in float32 against float64 on decoded Kodak images: agreement and speed.

For each image and each (codec, knob value), the decoded image is scored against the original with
pytorch_msssim on float32 and on float64 tensors (the same 0..255 values, data range 255). Reports the
largest differences (SSIM, MS-SSIM, MS-SSIM in dB = -10 log10(1 - MS-SSIM)), whether every value and
every per-setting mean prints the same at the 4 significant digits of ``codec eval``'s summary, and
the time per call, wall-clock and CPU (process time, all threads), each the best of ``--repeats``.

    python benchmarks/ssim_precision.py --data ../shared/data/kodak --images 4 --out benchmarks/results/ssim-precision/agreement-4-images.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from pytorch_msssim import ms_ssim, ssim

from neuralcodec.eval.adapters import image_adapter
from neuralcodec.media.images import list_images, read_rgb

SETTINGS = {"jpeg": (10.0, 50.0, 90.0), "webp": (10.0, 50.0, 90.0), "hevc": (46.0, 34.0, 22.0),
            "hyperprior": (1.0, 5.0, 9.0)}


def _nchw(image: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(dtype)


def _scores(original: np.ndarray, decoded: np.ndarray, dtype: torch.dtype, repeats: int) -> dict[str, float]:
    a, b = _nchw(original, dtype), _nchw(decoded, dtype)
    result = {}
    for name, metric in (("ssim", ssim), ("ms_ssim", ms_ssim)):
        wall = cpu = math.inf
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            value = float(metric(a, b, data_range=255.0))
            wall, cpu = min(wall, time.perf_counter() - start), min(cpu, time.process_time() - start_cpu)
        result[name], result[f"{name}_s"], result[f"{name}_cpu_s"] = value, wall, cpu
    return result


def _db(value: float) -> float:
    return -10.0 * math.log10(1.0 - value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--images", type=int, default=4, help="first N images of the folder")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's choice)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for path in list_images(args.data)[: args.images]:
        original = read_rgb(path)
        for name, knobs in SETTINGS.items():
            adapter = image_adapter(name)
            if adapter.unavailable_reason():
                continue
            for knob in knobs:
                decoded = adapter.decode(adapter.encode(original, knob))
                f64 = _scores(original, decoded, torch.float64, args.repeats)
                f32 = _scores(original, decoded, torch.float32, args.repeats)
                rows.append({"file": path.name, "codec": name, "knob": knob, "f64": f64, "f32": f32})
                print(f"{path.name} {name} {knob:g}: ssim {f64['ssim']:.7f} / {f32['ssim']:.7f}  "
                      f"ms-ssim {f64['ms_ssim']:.7f} / {f32['ms_ssim']:.7f}", flush=True)

    def worst(key: str, transform=lambda v: v) -> float:
        return max(abs(transform(r["f64"][key]) - transform(r["f32"][key])) for r in rows)

    def same_digits(values64: list[float], values32: list[float]) -> bool:
        return all(f"{a:.4g}" == f"{b:.4g}" for a, b in zip(values64, values32))

    groups: dict[tuple[str, float], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["codec"], row["knob"]), []).append(row)
    summary = {
        "pairs": len(rows),
        "max_abs_diff": {"ssim": worst("ssim"), "ms_ssim": worst("ms_ssim"), "ms_ssim_db": worst("ms_ssim", _db)},
        "same_at_4_digits": {
            key: {"per_image": same_digits([r["f64"][m] for r in rows], [r["f32"][m] for r in rows]),
                  "per_setting_mean": same_digits(
                      [np.mean([r["f64"][m] for r in g]) for g in groups.values()],
                      [np.mean([r["f32"][m] for r in g]) for g in groups.values()])}
            for key, m in (("ssim", "ssim"), ("ms_ssim", "ms_ssim"))},
        "same_db_at_4_digits_per_setting_mean": same_digits(
            [_db(np.mean([r["f64"]["ms_ssim"] for r in g])) for g in groups.values()],
            [_db(np.mean([r["f32"]["ms_ssim"] for r in g])) for g in groups.values()]),
        "seconds_per_call": {f"{m}_{p}": float(np.mean([r[p][f"{m}_s"] for r in rows]))
                             for m in ("ssim", "ms_ssim") for p in ("f64", "f32")},
        "cpu_seconds_per_call": {f"{m}_{p}": float(np.mean([r[p][f"{m}_cpu_s"] for r in rows]))
                                 for m in ("ssim", "ms_ssim") for p in ("f64", "f32")},
        "torch_threads": torch.get_num_threads(),
    }
    print(json.dumps(summary, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
