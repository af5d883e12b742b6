"""Wall time of `codec encode` on a folder of images: one batch call (`codec encode DIR -o OUT`) against one
call per image (`codec encode IMG OUT/NAME.ncd`), in the same run, and whether every batch output is
byte-identical to the single-file one. Each call is a fresh process, as a user runs it.

    python benchmarks/batch_encode.py --data ../shared/data/kodak [--quality 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from neuralcodec.media.images import image_files


def codec(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "neuralcodec", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of images")
    parser.add_argument("--quality", default="3")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    images = image_files(args.data)
    options = ["--codec", "image-hyperprior", "--quality", args.quality]
    with tempfile.TemporaryDirectory() as work:
        batch, single = Path(work) / "batch", Path(work) / "single"
        single.mkdir()
        batch_seconds = timed(lambda: codec("encode", str(args.data), "-o", str(batch), *options))
        single_seconds = timed(lambda: [codec("encode", str(image), str(single / f"{image.stem}.ncd"), *options)
                                        for image in images])
        identical = sum((batch / f"{i.stem}.ncd").read_bytes() == (single / f"{i.stem}.ncd").read_bytes()
                        for i in images)
    result = {"images": len(images), "quality": float(args.quality), "batch_seconds": round(batch_seconds, 1),
              "separate_calls_seconds": round(single_seconds, 1), "speedup": round(single_seconds / batch_seconds, 2),
              "byte_identical": identical}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
