"""Lossless coding of photos: the lossless-image codec against PNG, WebP, JPEG 2000 and JPEG XL lossless.

For every image of each set (Kodak; the training photos held out from training) it reports bits per
subpixel (file bytes x 8 / (W x H x channels)) and encode / decode seconds of every codec. The learned codec runs
through ``codec encode --lossless`` / ``codec decode``'s code path (files written and read back), each
decode checked pixel-identical; the classical codecs are checked lossless too. JPEG XL runs through ffmpeg
(libjxl, ``-distance 0``, efforts 7 and 9; its seconds include starting ffmpeg); PNG (optimize), WebP
(lossless, method 6) and JPEG 2000 (reversible 5/3 wavelet with the reversible colour transform) through
Pillow. With ``--grey`` the grey (L) versions of
the images are coded too (learned codec only), and ``--odd-sizes`` runs the CLI round trips of odd
shapes (1x1, 1x5000, 4097x3 and their transposes; height x width) and of an RGBA image.

    python benchmarks/lossless_images.py --out benchmarks/results/lossless_images --grey --odd-sizes
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from neuralcodec.api import decode_path, encode_path
from neuralcodec.codecs.lossless.image_training import held_out, photo_files
from neuralcodec.eval.ffmpeg_codecs import JPEGXL

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PUBLISHED_KODAK = {"L3C (Mentzer et al. 2019)": 3.26, "RC (Mentzer et al. 2020)": 3.38}


def _pillow(fmt: str, **options: object):
    def encode(image: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format=fmt, **options)
        return buffer.getvalue()

    def decode(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as decoded:
            return np.asarray(decoded)
    return encode, decode


def _jxl(effort: int):
    codec = replace(JPEGXL, options=("-distance", "{q}", "-effort", str(effort)))
    return (lambda image: codec.encode(image, 0.0)), codec.decode


ANCHORS = {
    "png": _pillow("PNG", optimize=True),
    "webp-lossless": _pillow("WEBP", lossless=True, quality=100, method=6),
    "jpeg2000-lossless": _pillow("JPEG2000", irreversible=False, mct=1),
    "jpegxl-e7": _jxl(7),
    "jpegxl-e9": _jxl(9),
}


def timed(function, *args):
    started = time.perf_counter()
    out = function(*args)
    return out, time.perf_counter() - started


def learned(path: Path, model: str, work: Path) -> dict:
    """bpsp, seconds and exactness of the learned codec on one image file (through the file API)."""
    ncd, back = work / "x.ncd", work / "back.png"
    back.unlink(missing_ok=True)
    stats, encode_s = timed(encode_path, path, ncd, model, None, True)
    _, decode_s = timed(decode_path, ncd, back, model)
    with Image.open(path) as original, Image.open(back) as decoded:
        exact = original.mode == decoded.mode and np.array_equal(np.asarray(original), np.asarray(decoded))
        subpixels = original.width * original.height * len(original.mode)
    if not exact:
        raise SystemExit(f"{path}: the decoded image differs from the input")
    return {"bpsp": 8 * ncd.stat().st_size / subpixels, "encode_s": encode_s, "decode_s": decode_s}


def anchor(name: str, image: np.ndarray) -> dict:
    encode, decode = ANCHORS[name]
    data, encode_s = timed(encode, image)
    decoded, decode_s = timed(decode, data)
    if not np.array_equal(decoded, image):
        raise SystemExit(f"{name} was not lossless")
    return {"bpsp": 8 * len(data) / (image.shape[0] * image.shape[1] * 3), "encode_s": encode_s, "decode_s": decode_s}


def run_set(files: list[Path], model: str, work: Path, grey: bool, anchors: dict) -> dict:
    """Rows per image; the classical codecs' results are taken from ``anchors`` (an earlier run's rows by
    image name) where present."""
    rows = {}
    for path in files:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
            grey_path = work / f"{path.stem}-grey.png"
            image.convert("L").save(grey_path)
        row = {"lossless-image": learned(path, model, work)}
        if grey:
            row["lossless-image-grey"] = learned(grey_path, model, work)
        for name in ANCHORS:
            row[name] = anchors.get(path.name, {}).get(name) or anchor(name, rgb)
        rows[path.name] = row
        print(path.name, {k: round(v["bpsp"], 4) for k, v in row.items()}, file=sys.stderr, flush=True)
    return rows


def summary(rows: dict) -> dict:
    names = next(iter(rows.values())).keys()
    return {name: {key: float(np.mean([r[name][key] for r in rows.values()])) for key in ("bpsp", "encode_s", "decode_s")}
            for name in names}


def cli_round_trip(source: Path, model: str, work: Path) -> dict:
    """``codec encode --lossless`` / ``codec decode`` in subprocesses; pixels compared."""
    ncd, back = work / f"{source.stem}.ncd", work / f"{source.stem}-back.png"
    command = [sys.executable, "-m", "neuralcodec"]
    subprocess.run([*command, "encode", str(source), str(ncd), "--lossless", "--model", model], check=True,
                   capture_output=True)
    subprocess.run([*command, "decode", str(ncd), str(back), "--model", model], check=True, capture_output=True)
    with Image.open(source) as a, Image.open(back) as b:
        exact = a.mode == b.mode and a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))
        return {"mode": a.mode, "size": list(a.size), "bytes": ncd.stat().st_size, "exact": exact}


def odd_sizes(model: str, work: Path) -> dict:
    photo = np.asarray(Image.open(SHARED / "kodak" / "kodim23.png").convert("RGB"))
    line = photo.reshape(-1, 3)
    alpha = np.clip(np.hypot(*np.mgrid[-256:256, -384:384]) * 255 / 400, 0, 255).astype(np.uint8)
    cases = {"1x1": line[:1].reshape(1, 1, 3), "1x5000": line[:5000].reshape(1, 5000, 3),
             "5000x1": line[:5000].reshape(5000, 1, 3), "4097x3": line[:4097 * 3].reshape(3, 4097, 3),
             "3x4097": line[:4097 * 3].reshape(4097, 3, 3), "kodim23-rgba": np.dstack([photo, alpha])}
    results = {}
    for name, pixels in cases.items():
        path = work / f"odd-{name}.png"
        Image.fromarray(np.ascontiguousarray(pixels)).save(path)
        results[name] = cli_round_trip(path, model, work)
        print(name, results[name], file=sys.stderr, flush=True)
    return results


def speed(path: Path, model: str, work: Path, repeats: int) -> dict:
    """Median encode / decode seconds of the learned codec (model loaded beforehand) and of JPEG XL effort 7
    on one image, measured in turns in the same run."""
    learned(path, model, work)  # loads the model
    rgb = np.asarray(Image.open(path).convert("RGB"))
    runs = [(learned(path, model, work), anchor("jpegxl-e7", rgb)) for _ in range(repeats)]
    out = {name: {key: float(np.median([r[i][key] for r in runs])) for key in ("encode_s", "decode_s")}
           for i, name in enumerate(("lossless-image", "jpegxl-e7"))}
    out["ratio_to_jpegxl_e7"] = {key: out["lossless-image"][key] / out["jpegxl-e7"][key] for key in ("encode_s", "decode_s")}
    return {"image": path.name, "repeats": repeats, **out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lossless-image-h64", help="shipped model id or weights path")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None, help="first N Kodak images only")
    parser.add_argument("--grey", action="store_true", help="also code the grey versions (learned codec)")
    parser.add_argument("--odd-sizes", action="store_true", help="CLI round trips of odd shapes and RGBA")
    parser.add_argument("--speed", type=Path, default=None, metavar="IMAGE",
                        help="only time the learned codec and JPEG XL effort 7 on IMAGE (medians; speed.json)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--anchors-from", type=Path, default=None, metavar="JSON",
                        help="reuse the classical codecs' rows of an earlier results.json (same images)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.speed:
        with tempfile.TemporaryDirectory() as work:
            timing = speed(args.speed, args.model, Path(work), args.repeats)
        print(json.dumps(timing))
        (args.out / "speed.json").write_text(json.dumps(timing, indent=1))
        return
    kodak = sorted((SHARED / "kodak").glob("*.png"))[: args.limit]
    _, held = held_out(photo_files(SHARED / "train-images"))
    result: dict = {"model": args.model, "published_kodak_bpsp": PUBLISHED_KODAK}
    with tempfile.TemporaryDirectory() as work:
        earlier = json.loads(args.anchors_from.read_text()) if args.anchors_from else {}
        for name, files in (("kodak", kodak), ("held_out_training_photos", held)):
            rows = run_set(files, args.model, Path(work), args.grey, earlier.get(name, {}).get("images", {}))
            result[name] = {"mean": summary(rows), "images": rows}
            print(name, json.dumps(result[name]["mean"]), flush=True)
        if args.odd_sizes:
            result["odd_sizes_cli"] = odd_sizes(args.model, Path(work))
    (args.out / "results.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
