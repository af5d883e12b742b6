"""Encode/decode time of one 768x512 image with two image models in the same run (e.g. the context model
against the hyperprior it was trained on): runs alternate between the models, medians are compared.
``--compressai`` adds CompressAI's context models (``mbt2018``: serial autoregressive context;
``cheng2020-anchor``) built at the first model's widths N and M with random weights (their coding time
does not depend on the weights' values) to the same alternation.

    python benchmarks/context_speed.py --models hyperprior-vr9c-n96,runs/ctx/model.safetensors \
        [--compressai mbt2018,cheng2020-anchor] [--image ../shared/data/kodak/kodim01.png] [--quality 5] \
        [--repeats 5] [--threads 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from neuralcodec.codecs.registry import load_codec
from neuralcodec.media.images import read_rgb

DEFAULT_IMAGE = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak" / "kodim01.png"


class CompressAIModel:
    """A CompressAI model with random weights, timed through its own compress/decompress (entropy coding
    included) behind the interface the loop below uses."""

    def __init__(self, name: str, n: int, m: int) -> None:
        from compressai.models import Cheng2020Anchor, JointAutoregressiveHierarchicalPriors

        builders = {"mbt2018": (lambda: JointAutoregressiveHierarchicalPriors(n, m), f"N={n}, M={m}"),
                    "cheng2020-anchor": (lambda: Cheng2020Anchor(n), f"N=M={n}")}
        if name not in builders:
            raise SystemExit(f"--compressai: unknown model {name!r}; known: {', '.join(builders)}")
        build, widths = builders[name]
        self.label = f"compressai-{name} ({widths}, random weights)"
        torch.manual_seed(0)
        self.model = build().eval()
        self.model.update(force=True)

    def compress(self, x: torch.Tensor, quality: float, reconstruct: bool = True) -> SimpleNamespace:
        """CompressAI's coded strings as ``.payload`` (``quality`` and ``reconstruct`` do not apply)."""
        return SimpleNamespace(payload=self.model.compress(x))

    def decompress(self, coded: dict) -> torch.Tensor:
        return self.model.decompress(coded["strings"], coded["shape"])["x_hat"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="hyperprior-vr9c-n96")
    parser.add_argument("--compressai", default="", metavar="NAMES",
                        help="CompressAI models to time too (mbt2018, cheng2020-anchor), at the first model's widths")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--quality", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    rgb = read_rgb(args.image)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    codecs = {name: load_codec(name) for name in args.models.split(",")}
    widths = next(iter(codecs.values())).image.config
    for name in filter(None, args.compressai.split(",")):
        model = CompressAIModel(name, widths.n, widths.m)
        codecs[model.label] = model
    payloads = {name: codec.compress(x, args.quality).payload for name, codec in codecs.items()}  # warm-up too
    times: dict[str, dict[str, list[float]]] = {name: {"encode_s": [], "decode_s": []} for name in codecs}
    for _ in range(args.repeats):
        for name, codec in codecs.items():
            started = time.perf_counter()
            codec.compress(x, args.quality, reconstruct=False)
            times[name]["encode_s"].append(time.perf_counter() - started)
            started = time.perf_counter()
            codec.decompress(payloads[name])
            times[name]["decode_s"].append(time.perf_counter() - started)
    first = next(iter(codecs))
    result = {"image": str(args.image), "size": list(rgb.shape[:2]), "quality": args.quality,
              "threads": args.threads, "repeats": args.repeats, "models": {}}
    for name, runs in times.items():
        medians = {key: statistics.median(values) for key, values in runs.items()}
        result["models"][name] = {**medians, **{f"{key}_vs_{first}": medians[key] / statistics.median(times[first][key])
                                                for key in medians}}
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
