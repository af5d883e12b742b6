"""`codec eval`: sweep image codecs over their quality knobs on a folder of images, and report.

Every (codec, quality, image) result is appended to ``OUT/rows.jsonl`` as soon as it is measured, so
an interrupted run resumes where it stopped (the cache is keyed by codec, knob value and file name).
Outputs, rewritten at the end of every run: ``results.json`` (rows, per-quality averages, BD-rates),
``results.csv`` (rows), ``rd_psnr.png`` and ``rd_ms_ssim.png`` (averaged curves) and ``summary.md``.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from neuralcodec.errors import InputError
from neuralcodec.eval.adapters import image_adapter
from neuralcodec.eval.bdrate import bd_rate_or_reason
from neuralcodec.eval.metrics import MS_SSIM_MIN_SIDE, bits_per_pixel, ms_ssim, psnr, psnr_y
from neuralcodec.eval.plots import plot_rd_curves
from neuralcodec.fileio import atomic_write_bytes
from neuralcodec.train.datasets import list_images, load_rgb

ROWS_NAME = "rows.jsonl"
METRICS = ("bpp", "psnr", "psnr_y", "ms_ssim")


def _measure(adapter: object, image: np.ndarray, quality: float) -> dict[str, float | None]:
    data = adapter.encode(image, quality)
    decoded = adapter.decode(data)
    if decoded.shape != image.shape:
        raise InputError(f"{adapter.name} decoded a {decoded.shape} image from a {image.shape} one")
    height, width = image.shape[:2]
    small = min(height, width) < MS_SSIM_MIN_SIDE
    return {"bytes": len(data), "bpp": bits_per_pixel(len(data), height, width), "psnr": psnr(image, decoded),
            "psnr_y": psnr_y(image, decoded), "ms_ssim": None if small else ms_ssim(image, decoded)}


def _load_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by an interrupted run: measure it again
            continue
    return rows


def average_rows(rows: list[dict], key: str, metrics: Sequence[str]) -> list[dict]:
    """Mean of each metric per value of ``key``, sorted by that value. A metric is averaged over the rows
    where it is not None, and left out of a point when its rows do not have it at all."""
    groups: dict[float, list[dict]] = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row)
    curve = []
    for value, group in sorted(groups.items()):
        point = {key: value}
        for metric in metrics:
            if any(metric in row for row in group):
                values = [row[metric] for row in group if row.get(metric) is not None]
                point[metric] = float(np.mean(values)) if values else None
        curve.append(point)
    return curve


def _curve(rows: list[dict]) -> list[dict]:
    """Per-quality means of one codec's rows (with the number of images), sorted by rate."""
    counts = Counter(row["quality"] for row in rows)
    return sorted(({**p, "images": counts[p["quality"]]} for p in average_rows(rows, "quality", METRICS)),
                  key=lambda p: p["bpp"])


def _bd_rates(curves: dict[str, list[dict]], anchor: str) -> dict[str, float | str]:
    """BD-rate (%, PCHIP, PSNR) of every codec against ``anchor``; a reason where it is undefined."""
    reference = [(p["bpp"], p["psnr"]) for p in curves[anchor]]
    return {name: bd_rate_or_reason(reference, [(p["bpp"], p["psnr"]) for p in curve])
            for name, curve in curves.items() if name != anchor}


def evaluate_images(codecs: Sequence[str], data: str | Path, out_dir: str | Path, limit: int | None = None,
                    anchor: str | None = None, progress: bool = True) -> dict:
    """Sweep ``codecs`` (names for :func:`image_adapter`) on the images under ``data``; see module docstring."""
    files = list_images(data)[:limit]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / ROWS_NAME
    rows = _load_rows(rows_path)
    done = {(r["codec"], r["quality"], r["file"]) for r in rows}
    unavailable: dict[str, str] = {}
    images: dict[Path, np.ndarray] = {}
    for name in codecs:
        adapter = image_adapter(name)
        reason = adapter.unavailable_reason()
        if reason:
            unavailable[adapter.name] = reason
            continue
        todo = [(q, f) for q in adapter.qualities for f in files if (adapter.name, q, f.name) not in done]
        for quality, path in tqdm(todo, desc=adapter.name, unit="img", disable=not progress or not todo):
            if path not in images:
                images[path] = load_rgb(path)
            row = {"codec": adapter.name, "quality": quality, "file": path.name,
                   **_measure(adapter, images[path], quality)}
            with open(rows_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
            rows.append(row)
            done.add((adapter.name, quality, path.name))
    return write_report(rows, out, [f.name for f in files], unavailable, anchor)


def write_report(rows: list[dict], out: Path, files: list[str], unavailable: dict[str, str],
                 anchor: str | None) -> dict:
    """Write results.json/.csv, the plots and summary.md for the rows of the listed files."""
    wanted = set(files)
    selected = [r for r in rows if r["file"] in wanted]
    if not selected:
        raise InputError("nothing was measured: every codec is unavailable" if unavailable else "no results")
    by_codec: dict[str, list[dict]] = {}
    for row in selected:
        by_codec.setdefault(row["codec"], []).append(row)
    curves = {name: _curve(group) for name, group in by_codec.items()}
    anchor = anchor if anchor in curves else next(iter(curves))
    result = {"images": len(files), "anchor": anchor, "curves": curves, "bd_rate_percent_vs_anchor": _bd_rates(curves, anchor),
              "unavailable": unavailable, "rows": selected}
    atomic_write_bytes(out / "results.json", json.dumps(result, indent=2).encode())
    _write_csv(out / "results.csv", selected)
    plot_rd_curves({n: [(p["bpp"], p["psnr"]) for p in c] for n, c in curves.items()}, out / "rd_psnr.png",
                   title=f"RGB PSNR vs rate ({len(files)} images)")
    with_ssim = {n: [(p["bpp"], p["ms_ssim"]) for p in c] for n, c in curves.items() if c[0]["ms_ssim"] is not None}
    if with_ssim:
        plot_rd_curves(with_ssim, out / "rd_ms_ssim.png", ylabel="MS-SSIM", title=f"MS-SSIM vs rate ({len(files)} images)")
    atomic_write_bytes(out / "summary.md", _summary(result).encode())
    return result


def _write_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["codec", "quality", "file", "bytes", *METRICS],
                            extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode())


def _summary(result: dict) -> str:
    lines = [f"# Codec evaluation ({result['images']} images)", "",
             "| codec | quality | bpp | PSNR (dB) | PSNR-Y (dB) | MS-SSIM |", "|---|---|---|---|---|---|"]
    for name, curve in result["curves"].items():
        for p in curve:
            ssim = "" if p["ms_ssim"] is None else f"{p['ms_ssim']:.4f}"
            lines.append(f"| {name} | {p['quality']:g} | {p['bpp']:.4f} | {p['psnr']:.2f} | {p['psnr_y']:.2f} | {ssim} |")
    lines += ["", f"BD-rate (PSNR, PCHIP) against {result['anchor']}, negative = fewer bits:", ""]
    lines += [f"- {name}: {value}{'%' if isinstance(value, float) else ''}"
              for name, value in result["bd_rate_percent_vs_anchor"].items()]
    if result["unavailable"]:
        lines += ["", "Unavailable: " + "; ".join(f"{k} ({v})" for k, v in result["unavailable"].items())]
    return "\n".join(lines) + "\n"
