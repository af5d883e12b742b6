"""CompressAI models imported with `codec import-compressai` against CompressAI itself, on real images:
forward-pass difference, file size against CompressAI's ``compress()`` bytes, the coded reconstruction
against CompressAI's ``decompress()``, and bit-exact decoding. Randomly initialised zoo architectures
(``pretrained=False``; no network); ``--latent-gain G`` scales their last analysis layer by G and starts
the predicted scales at 2, so that the latents are not nearly all rounded to zero.

    python benchmarks/compressai_import.py [--data ../shared/data/kodak --limit 3 --latent-gain 10 --json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from compressai.zoo import bmshj2018_hyperprior, mbt2018_mean

from neuralcodec import container
from neuralcodec.codecs.image.compressai_import import import_compressai
from neuralcodec.codecs.image.model import pad_to_multiple
from neuralcodec.codecs.registry import load_codec
from neuralcodec.fileio import atomic_write_bytes
from neuralcodec.media.images import list_images, read_rgb

ZOO = {"bmshj2018-hyperprior": bmshj2018_hyperprior, "mbt2018-mean": mbt2018_mean}
QUALITIES = (3, 8)
"""Zoo qualities measured: N=128, M=192 and N=192, M=320 for both architectures."""


def _compressai_model(arch: str, quality: int, latent_gain: float) -> torch.nn.Module:
    torch.manual_seed(quality)
    net = ZOO[arch](quality=quality, pretrained=False).eval()
    if latent_gain != 1:
        with torch.no_grad():
            net.g_a[6].weight.mul_(latent_gain)
            net.g_a[6].bias.mul_(latent_gain)
            net.h_s[4].bias[: net.M].add_(2)
    net.update(force=True)
    return net


@torch.no_grad()
def _measure(net: torch.nn.Module, codec, image: np.ndarray) -> dict:
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    padded = pad_to_multiple(x)  # CompressAI codes what our codec codes: the replicate-padded image
    forward_diff = (net(padded)["x_hat"] - codec.model(padded, 0)["x_hat"]).abs().max().item()
    coded = net.compress(padded)
    reference = net.decompress(coded["strings"], coded["shape"])["x_hat"][..., : x.shape[2], : x.shape[3]]
    coding = codec.compress(x)
    file = container.serialize(*codec.packed(coding.payload))
    decoded = codec.decompress(container.read(file))
    difference = (decoded - reference).abs()
    return {"compressai_bytes": sum(len(s[0]) for s in coded["strings"]),
            "stream_bytes": len(coding.payload.sections["bits"]), "file_bytes": len(file),
            "forward_max_abs_diff": forward_diff, "recon_max_abs_diff": difference.max().item(),
            "recon_psnr_vs_compressai": -10 * math.log10(max(difference.square().mean().item(), 1e-30)),
            "bit_exact": bool(torch.equal(decoded, coding.x_hat))}


def run(images: list[Path], latent_gain: float) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for arch in ZOO:
            for quality in QUALITIES:
                net = _compressai_model(arch, quality, latent_gain)
                checkpoint, weights = Path(folder) / "checkpoint.pth.tar", Path(folder) / f"{arch}-{quality}.safetensors"
                torch.save({"state_dict": net.state_dict()}, checkpoint)
                import_compressai(checkpoint, arch, weights)
                codec = load_codec(str(weights))
                for path in images:
                    rows.append({"arch": arch, "quality": quality, "image": path.name,
                                 **_measure(net, codec, read_rgb(path))})
                    print(json.dumps(rows[-1]), flush=True)
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Per model: total bytes ratios, worst differences, all decodes bit-exact."""
    result = []
    for key in dict.fromkeys((r["arch"], r["quality"]) for r in rows):
        group = [r for r in rows if (r["arch"], r["quality"]) == key]
        total = sum(r["compressai_bytes"] for r in group)
        result.append({"arch": key[0], "quality": key[1], "images": len(group),
                       "file_over_compressai": sum(r["file_bytes"] for r in group) / total,
                       "stream_over_compressai": sum(r["stream_bytes"] for r in group) / total,
                       "forward_max_abs_diff": max(r["forward_max_abs_diff"] for r in group),
                       "recon_max_abs_diff": max(r["recon_max_abs_diff"] for r in group),
                       "recon_psnr_vs_compressai_min": min(r["recon_psnr_vs_compressai"] for r in group),
                       "bit_exact": all(r["bit_exact"] for r in group)})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak")
    parser.add_argument("--limit", type=int, default=3)
    parser.add_argument("--latent-gain", type=float, default=1.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = run(list_images(args.data)[: args.limit], args.latent_gain)
    report = {"latent_gain": args.latent_gain, "threads": torch.get_num_threads(), "summary": summary(rows), "rows": rows}
    print("\n".join(json.dumps(line) for line in report["summary"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(args.json, json.dumps(report, indent=1).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
