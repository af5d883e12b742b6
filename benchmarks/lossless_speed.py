"""Per-pixel coding cost of the HCLT against image size: incremental depth-first pass vs naive recompute.

For image sides 7, 14, 28, 56 (MNIST digits resized), it learns a Chow-Liu tree, builds an HCLT with
``--hidden`` states (random parameters: timing does not depend on their values) and times computing
every pixel's conditional pmf of one image (what encode and decode both do):
- ``incremental``: ``hclt_coding.code_pixels`` (constant tree work per pixel);
- ``naive``: ``hclt_coding.naive_conditionals`` (a full pass over the tree per pixel), up to --naive-max-side.
It also times batched coding (images/s) at 28x28 for a few batch sizes. Writes JSON and a log-log plot.

    python benchmarks/lossless_speed.py --out benchmarks/results/lossless
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from neuralcodec.codecs.lossless.chow_liu import chow_liu_tree  # noqa: E402
from neuralcodec.codecs.lossless.hclt import HCLTConfig, HiddenChowLiuTree  # noqa: E402
from neuralcodec.codecs.lossless.coding import CodingTables, code_pixels, naive_conditionals  # noqa: E402
from neuralcodec.media.idx import read_idx  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def resized(images: np.ndarray, side: int) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im).resize((side, side), Image.BILINEAR)) for im in images])


def tables_for(images: np.ndarray, hidden: int) -> CodingTables:
    side = images.shape[1]
    pixels = torch.from_numpy(images.reshape(len(images), -1).astype(np.int64))
    tree = chow_liu_tree(pixels[:1000], side, bins=8 if side <= 28 else 4)  # keeps the 56x56 MI matrix cheap
    model = HiddenChowLiuTree(HCLTConfig(height=side, width=side, hidden=hidden), tree)
    model.initialize(pixels, torch.Generator().manual_seed(0))
    root, transition, emission = (p.detach().half() for p in model.probabilities())
    return CodingTables.from_probabilities(root, transition, emission, tree)


def time_incremental(tables: CodingTables, images: np.ndarray, repeats: int = 3) -> float:
    flat = images.reshape(len(images), -1)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        code_pixels(tables, len(flat), lambda pixel, pmf, rows: flat[:, pixel])
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--naive-max-side", type=int, default=28)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/lossless"))
    args = parser.parse_args()
    mnist = read_idx(SHARED / "mnist" / "train-images-idx3-ubyte.gz")[:3000]
    rows = []
    for side in (7, 14, 28, 56):
        images = resized(mnist, side)
        tables = tables_for(images, args.hidden)
        one = images[:1]
        row = {"side": side, "pixels": side * side, "tree_height": int(tables.tree.depth.max()),
               "incremental_s": time_incremental(tables, one)}
        if side <= args.naive_max_side:
            started = time.perf_counter()
            naive_conditionals(tables, one.reshape(1, -1))
            row["naive_s"] = time.perf_counter() - started
        rows.append(row)
        print(row, flush=True)
    tables28 = tables_for(mnist, args.hidden)
    batches = []
    for batch in (1, 64, 1024, 4096):
        seconds = time_incremental(tables28, mnist[:batch], repeats=2)
        batches.append({"batch": batch, "seconds": seconds, "images_per_s": batch / seconds})
        print(batches[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"hidden": args.hidden, "threads": torch.get_num_threads(), "sizes": rows, "batches_28x28": batches,
              "note": "seconds to compute all conditionals of one image (pmfs only, no entropy coding)"}
    (args.out / "lossless_speed.json").write_text(json.dumps(result, indent=2))
    figure, axis = plt.subplots(figsize=(5.5, 4))
    pixels = [r["pixels"] for r in rows]
    axis.loglog(pixels, [1e3 * r["incremental_s"] / r["pixels"] for r in rows], "o-", label="incremental (ours)")
    naive = [r for r in rows if "naive_s" in r]
    axis.loglog([r["pixels"] for r in naive], [1e3 * r["naive_s"] / r["pixels"] for r in naive], "s--",
                label="naive recompute per pixel")
    axis.set_xlabel("pixels per image D")
    axis.set_ylabel("ms per pixel (one image)")
    axis.set_title(f"HCLT conditionals, H={args.hidden}, CPU")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(args.out / "lossless_scaling.png", dpi=120)


if __name__ == "__main__":
    main()
