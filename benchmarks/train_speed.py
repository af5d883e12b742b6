"""Training-step time of the image hyperprior in float32 against bfloat16 autocast (what `codec train`
uses where :func:`neuralcodec.train.loop.autocast_available` says so), in one run, as a ratio.

One step = the loop's own ``ImageRateDistortionTask.training_step`` (forward, rate-distortion loss),
backward and an Adam update, on a batch of random crops at the shipped model's widths. Random
weights (timing only); median of ``--repeats`` steps after a warm-up step.

    python benchmarks/train_speed.py [--n 96 --m 128 --batch-size 8 --crop 256] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from neuralcodec.codecs.image_hyperprior import HyperpriorConfig, ImageHyperprior
from neuralcodec.train.image_task import ImageRateDistortionTask
from neuralcodec.train.loop import autocast_available, cpu_has_native_bf16

LAMBDAS = (0.0018, 0.0067, 0.025)


def _step_seconds(batch: torch.Tensor, config: HyperpriorConfig, amp: bool, repeats: int) -> float:
    torch.manual_seed(0)
    model = ImageHyperprior(config).train().to(batch.device)
    task = ImageRateDistortionTask(config.lambdas)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    device = batch.device.type

    def step() -> None:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=amp):
            loss = task.training_step(model, batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=96)
    parser.add_argument("--m", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if not autocast_available(device):
        print(f"bf16 autocast is not used on {device} (no native bf16): nothing to compare", file=sys.stderr)
        return 1
    config = HyperpriorConfig(n=args.n, m=args.m, lambdas=LAMBDAS)
    batch = torch.rand(args.batch_size, 3, args.crop, args.crop, device=device)
    float32 = _step_seconds(batch, config, amp=False, repeats=args.repeats)
    bfloat16 = _step_seconds(batch, config, amp=True, repeats=args.repeats)
    result = {
        "device": str(device), "threads": torch.get_num_threads(), "cpu_native_bf16": cpu_has_native_bf16(),
        "n": args.n, "m": args.m, "batch_size": args.batch_size, "crop": args.crop,
        "float32_step_s": round(float32, 4), "bf16_autocast_step_s": round(bfloat16, 4),
        "bf16_speedup": round(float32 / bfloat16, 2),
    }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
