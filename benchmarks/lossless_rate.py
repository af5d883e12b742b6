"""Lossless rate on the MNIST / Fashion-MNIST test sets: the shipped HCLT against PNG, WebP, JPEG 2000, JPEG XL.

For the learned codec it reports, in bits per dimension (bits per pixel of 28x28 8-bit images):
- ``model_nll``: the exact negative log2-likelihood of the shipped (fp16) model, averaged over images;
- ``ideal``: Σ −log2 p under the integer pmfs actually fed to the coder;
- ``file``: the real .ncd file holding all test images (one ANS stream, container header included),
  encoded and decoded through ``codec encode`` / ``codec decode``'s code path, checked bit-exact;
- ``single_file`` / ``single_stream``: one compact file per image (with / without its 5-byte header),
  on the first ``--single-images`` images.
Classical codecs compress each image into its own file (headers included) and are checked lossless.

    python benchmarks/lossless_rate.py --dataset mnist --out benchmarks/results/lossless
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from neuralcodec import container
from neuralcodec.api import decode_path, encode_path
from neuralcodec.media.idx import read_idx, write_idx
from neuralcodec.codecs.registry import load_codec
from neuralcodec.container import Payload
from neuralcodec.eval.classical_lossless import LOSSLESS_CODECS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PUBLISHED = {  # bits per dimension, as quoted in the issue (theoretical rates of the papers)
    "mnist": {"Bit-Swap (Kingma et al. 2019)": 1.27, "HCLT (Liu et al. 2022), about": 1.25},
    "fashion-mnist": {"Bit-Swap (Kingma et al. 2019)": 3.28},
}


def classical_sizes(images: np.ndarray, cache: Path) -> dict[str, float]:
    """Mean bpd of every available classical codec, one file per image; cached in ``cache``."""
    results = json.loads(cache.read_text()) if cache.exists() else {}
    for name, codec in LOSSLESS_CODECS.items():
        if name in results:
            continue
        reason = codec.unavailable_reason()
        if reason:
            print(f"{name}: unavailable ({reason})", file=sys.stderr)
            continue
        sizes = [codec.size_checked(image) for image in tqdm(images, desc=name, unit="img", leave=False)]
        results[name] = 8 * float(np.sum(sizes)) / images.size
        cache.write_text(json.dumps(results, indent=2))
    return results


def learned_rates(images: np.ndarray, model_id: str, single_images: int, work: Path) -> dict[str, float]:
    codec = load_codec(model_id)
    pixels = torch.from_numpy(images.reshape(len(images), -1).astype(np.int64))
    with torch.no_grad():
        per_image = torch.cat([codec.likelihood_model().bits_per_dim(chunk) for chunk in pixels.split(1000)])
    source, target, restored = work / "test-ubyte", work / "test.ncd", work / "restored-ubyte"
    write_idx(source, images)
    started = time.perf_counter()
    stats = encode_path(source, target, model=model_id)
    encode_s = time.perf_counter() - started
    started = time.perf_counter()
    decode_path(target, restored)
    decode_s = time.perf_counter() - started
    if not np.array_equal(read_idx(restored), images):
        raise SystemExit("decoded images differ from the input")
    file_bytes = target.stat().st_size
    code = codec.compact_code
    single_file = single_stream = 0
    for image in tqdm(images[:single_images], desc="single-image files", unit="img", leave=False):
        stream, _ = codec.compress(image[None])
        payload = Payload(codec.name, codec.model_id, codec.weights_hash, {}, {"stream": stream})
        single_file += len(container.serialize(payload, code))
        single_stream += len(stream)
    singles = min(single_images, len(images)) * images[0].size
    return {
        "model_nll": float(per_image.mean()), "ideal": stats["ideal_bpd"], "file": 8 * file_bytes / images.size,
        "stream": 8 * stats["stream_bytes"] / images.size, "header_bytes": file_bytes - stats["stream_bytes"],
        "single_file": 8 * single_file / singles, "single_stream": 8 * single_stream / singles,
        "single_images": min(single_images, len(images)),
        "single_model_nll": float(per_image[:single_images].mean()),
        "encode_images_per_s": len(images) / encode_s, "decode_images_per_s": len(images) / decode_s,
    }


def markdown(dataset: str, count: int, learned: dict, classical: dict, model_id: str) -> str:
    rows = [f"### {dataset} test set ({count} images), bits per dimension", "",
            "| codec | bpd |", "|---|---|",
            f"| {model_id}: model NLL (shipped fp16 parameters) | {learned['model_nll']:.4f} |",
            f"| {model_id}: ideal under the coder's integer pmfs | {learned['ideal']:.4f} |",
            f"| {model_id}: one .ncd file of all {count} images (header {learned['header_bytes']} B) | "
            f"{learned['file']:.4f} |",
            f"| {model_id}: one compact file per image, with 5-byte header (first {learned['single_images']}) | "
            f"{learned['single_file']:.4f} |",
            f"| {model_id}: the same without the header | {learned['single_stream']:.4f} |",
            f"| {model_id}: model NLL of those {learned['single_images']} images | {learned['single_model_nll']:.4f} |"]
    rows += [f"| {name} (one file per image) | {value:.4f} |" for name, value in classical.items()]
    rows += [f"| {name} (published) | {value} |" for name, value in PUBLISHED.get(dataset, {}).items()]
    rows += ["", f"Throughput (2-core CPU, whole test set in one file): encode "
                 f"{learned['encode_images_per_s']:.0f} images/s, decode {learned['decode_images_per_s']:.0f} images/s."]
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    parser.add_argument("--data", type=Path, default=None, help="test IDX file (default: ../shared/data/DATASET)")
    parser.add_argument("--model", default=None, help="model id (default: hclt-DATASET)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N test images")
    parser.add_argument("--single-images", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/lossless"))
    args = parser.parse_args()
    data = args.data or SHARED / args.dataset / "t10k-images-idx3-ubyte.gz"
    if not data.exists():
        raise SystemExit(f"{data} not found")
    images = read_idx(data)[: args.limit]
    model_id = args.model or f"hclt-{args.dataset}"
    args.out.mkdir(parents=True, exist_ok=True)
    classical = classical_sizes(images, args.out / f"{args.dataset}_classical_{len(images)}.json")
    with tempfile.TemporaryDirectory() as work:
        learned = learned_rates(images, model_id, args.single_images, Path(work))
    result = {"dataset": args.dataset, "images": len(images), "model": model_id, "learned": learned,
              "classical": classical, "published": PUBLISHED.get(args.dataset, {}),
              "threads": torch.get_num_threads()}
    (args.out / f"{args.dataset}_rate.json").write_text(json.dumps(result, indent=2))
    table = markdown(args.dataset, len(images), learned, classical, model_id)
    (args.out / f"{args.dataset}_rate.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
