"""Training-step time of the image hyperprior in float32 against bfloat16 autocast (what `codec train`
uses where :func:`neuralcodec.train.loop.autocast_available` says so), in one run, as a ratio.

One step = the loop's own ``ImageRateDistortionTask.training_step`` (forward, rate-distortion loss),
backward and an Adam update, on a batch of random crops at the shipped model's widths. Random
weights (timing only); median of ``--repeats`` steps after a warm-up step. It also reports how far the
bf16 gradient of one batch is from the float32 one (same weights, noise and levels): cosine and norm ratio.

    python benchmarks/train_speed.py [--n 96 --m 128 --batch-size 8 --crop 256] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from image_speed import median_time

from neuralcodec.codecs.image.codec import ImageHyperpriorCodec, model_from_weights
from neuralcodec.codecs.image.model import HyperpriorConfig, ImageHyperprior
from neuralcodec.pretrained import load_named_weights
from neuralcodec.codecs.image.rd_task import ImageRateDistortionTask
from neuralcodec.train.loop import autocast_available, cpu_has_native_bf16

LAMBDAS = (0.0018, 0.0067, 0.025)


def _loss(model: ImageHyperprior, task: ImageRateDistortionTask, batch: torch.Tensor, amp: bool) -> torch.Tensor:
    """The loop's training loss of one batch, with or without bf16 autocast."""
    with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=amp):
        return task.training_step(model, batch)["loss"]


def _step_seconds(batch: torch.Tensor, config: HyperpriorConfig, amp: bool, repeats: int) -> float:
    torch.manual_seed(0)
    model = ImageHyperprior(config).train().to(batch.device)
    task = ImageRateDistortionTask(config.lambdas)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)

    def step() -> None:
        loss = _loss(model, task, batch, amp)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return median_time(step, repeats, batch.device.type)


def _photo_crops(count: int, crop: int) -> torch.Tensor:
    """``count`` random ``crop``-pixel crops of scikit-image's astronaut photo (512x512), in [0, 1]."""
    from skimage import data

    photo = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    crop = min(crop, photo.shape[-1])
    generator = torch.Generator().manual_seed(0)
    corners = torch.randint(photo.shape[-1] - crop + 1, (count, 2), generator=generator).tolist()
    return torch.stack([photo[:, top : top + crop, left : left + crop] for top, left in corners])


def _gradient_agreement(batch: torch.Tensor, model: ImageHyperprior) -> dict:
    model = model.train().to(batch.device)
    task = ImageRateDistortionTask(model.config.lambdas)

    def gradient(amp: bool) -> torch.Tensor:
        torch.manual_seed(1)  # the same levels and quantization noise for both
        model.zero_grad(set_to_none=True)
        _loss(model, task, batch, amp).backward()
        return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    float32, bfloat16 = gradient(False), gradient(True)
    return {
        "gradient_cosine": round(float(torch.nn.functional.cosine_similarity(float32, bfloat16, dim=0)), 4),
        "gradient_norm_ratio": round(float(bfloat16.norm() / float32.norm()), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=96)
    parser.add_argument("--m", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--gradient-model", default=None,
                        help="shipped model id or .safetensors file for the gradient check (default: the default image model)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if not autocast_available(device):
        print(f"bf16 autocast is not used on {device} (no native bf16): nothing to compare", file=sys.stderr)
        return 1
    config = HyperpriorConfig(n=args.n, m=args.m, lambdas=LAMBDAS)
    trained = model_from_weights(load_named_weights(args.gradient_model, ImageHyperpriorCodec.name))
    batch = torch.rand(args.batch_size, 3, args.crop, args.crop, device=device)
    float32 = _step_seconds(batch, config, amp=False, repeats=args.repeats)
    bfloat16 = _step_seconds(batch, config, amp=True, repeats=args.repeats)
    result = {
        "device": str(device), "threads": torch.get_num_threads(), "cpu_native_bf16": cpu_has_native_bf16(),
        "n": args.n, "m": args.m, "batch_size": args.batch_size, "crop": args.crop,
        "float32_step_s": round(float32, 4), "bf16_autocast_step_s": round(bfloat16, 4),
        "bf16_speedup": round(float32 / bfloat16, 2),
        "gradient_model": args.gradient_model or "default image model",
        **_gradient_agreement(_photo_crops(args.batch_size, args.crop).to(device), trained),
    }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
