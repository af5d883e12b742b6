"""The reports of `codec eval`: results.json/.csv, plots and summary.md from the measured rows.

Per codec and knob value (each codec's own knob, named in every table, plot and in results.json):
mean rate and distortion (and MS-SSIM in dB, ``-10 log10(1 - mean MS-SSIM)``), and (with a task) the
task's metrics over those samples plus their *degradation*, the loss against the uncompressed samples
(accuracy drop, WER increase; positive = worse). Across all operating points: Spearman and Pearson
correlations between each distortion metric (and the rate) and the task's headline metric. BD-rates
against an anchor codec for images (PSNR, PCHIP). Rate-distortion plots have a log-scale rate axis and
show MS-SSIM in dB. results.json also records the software versions and the UTC date of the run.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from neuralcodec.errors import InputError
from neuralcodec.eval.bdrate import bd_rate_or_reason, rate_at_quality
from neuralcodec.eval.environment import environment, utc_now
from neuralcodec.eval.measure import AUDIO_METRICS, IMAGE_METRICS
from neuralcodec.eval.plots import plot_rd_curves
from neuralcodec.eval.tasks import PerceptionTask
from neuralcodec.fileio import atomic_write_bytes
from neuralcodec.metrics import ms_ssim_db

DEGRADATION_BUDGETS = (0.01, 0.05)
"""Task-metric losses (absolute: 1 and 5 accuracy or WER points) for which the rate needed is reported."""

REFERENCE_CODEC = "uncompressed"
"""The codec name of the rows that score the task on the original samples."""

METRIC_LABELS = {"bpp": "bits per pixel", "kbps": "kbit/s", "psnr": "PSNR (dB)", "psnr_y": "PSNR-Y (dB)",
                 "ssim": "SSIM", "ms_ssim": "MS-SSIM", "ms_ssim_db": "MS-SSIM (dB)", "snr": "SNR (dB)"}


def _with_derived(metrics: tuple[str, ...]) -> tuple[str, ...]:
    """The curve metrics: the measured ones, with MS-SSIM in dB after MS-SSIM."""
    return tuple(m for metric in metrics for m in ((metric, "ms_ssim_db") if metric == "ms_ssim" else (metric,)))


PLOTTED_LEFT_OUT = ("ms_ssim",)
"""Curve metrics not plotted (MS-SSIM is plotted in dB)."""


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


def _curve(rows: list[dict], metrics: tuple[str, ...], task: PerceptionTask | None,
           reference: dict[str, float] | None) -> list[dict]:
    """Per-quality means of one codec's rows (plus sample count and task metrics), sorted by rate."""
    counts = Counter(row["quality"] for row in rows)
    curve = []
    for point in average_rows(rows, "quality", metrics):
        point["samples"] = counts[point["quality"]]
        if point.get("ms_ssim") is not None:
            point["ms_ssim_db"] = ms_ssim_db(point["ms_ssim"])
        if task is not None:
            summary = task.summarize([r["task"] for r in rows if r["quality"] == point["quality"]])
            point["task"] = summary
            change = summary[task.headline] - reference[task.headline]
            point["degradation"] = -change if task.higher_is_better else change
        curve.append(point)
    return sorted(curve, key=lambda p: p[metrics[0]])


def _correlations(curves: dict[str, list[dict]], metrics: tuple[str, ...], headline: str) -> dict[str, dict]:
    """Spearman and Pearson correlation of each metric with the task headline over all operating points."""
    points = [p for curve in curves.values() for p in curve]
    target = np.array([p["task"][headline] for p in points], dtype=float)
    result = {}
    for metric in metrics:
        values = np.array([p.get(metric) if p.get(metric) is not None else np.nan for p in points], dtype=float)
        usable = np.isfinite(values) & np.isfinite(target)
        if usable.sum() < 3 or np.ptp(values[usable]) == 0 or np.ptp(target[usable]) == 0:
            continue
        result[metric] = {"spearman": float(stats.spearmanr(values[usable], target[usable])[0]),
                          "pearson": float(stats.pearsonr(values[usable], target[usable])[0]),
                          "points": int(usable.sum())}
    return result


def _rates_within_budgets(curves: dict[str, list[dict]], rate: str) -> dict[str, dict[str, float | None]]:
    """Per codec, the lowest rate whose degradation stays within each budget (None: never within it)."""
    return {name: {f"{budget:g}": rate_at_quality([(p[rate], -p["degradation"]) for p in curve], -budget)
                   for budget in DEGRADATION_BUDGETS}
            for name, curve in curves.items()}


def write_report(rows: list[dict], out: Path, keys: list[str], unavailable: dict[str, str], anchor: str | None,
                 knobs: Mapping[str, str], task: PerceptionTask | None = None, modality: str = "image") -> dict:
    """Write results.json/.csv, the plots and summary.md for the rows of the listed samples; ``knobs`` names
    each codec's knob (``{"jpeg": "quality", "hevc": "CRF", ...}``)."""
    wanted = set(keys)
    selected = [r for r in rows if r["file"] in wanted]
    coded = [r for r in selected if r["codec"] != REFERENCE_CODEC]
    if not coded:
        raise InputError("nothing was measured: every codec is unavailable" if unavailable else "no results")
    metrics = AUDIO_METRICS if modality == "audio" else IMAGE_METRICS
    reference = None
    if task is not None:
        reference = task.summarize([r["task"] for r in selected if r["codec"] == REFERENCE_CODEC])
    by_codec: dict[str, list[dict]] = {}
    for row in coded:
        by_codec.setdefault(row["codec"], []).append(row)
    curves = {name: _curve(group, metrics, task, reference) for name, group in by_codec.items()}
    anchor = anchor if anchor in curves else next(iter(curves))
    result: dict[str, Any] = {"samples": len(keys), "modality": modality, "date_utc": utc_now(),
                              "environment": environment(), "anchor": anchor,
                              "knobs": {name: knobs[name] for name in curves}, "curves": curves}
    if modality == "image":
        result["bd_rate_percent_vs_anchor"] = _bd_rates(curves, anchor)
    if task is not None:
        result["task"] = {"name": task.name, "headline": task.headline, "higher_is_better": task.higher_is_better,
                          "uncompressed": reference,
                          "correlation_with_headline": _correlations(curves, metrics, task.headline),
                          "rate_within_degradation": _rates_within_budgets(curves, metrics[0])}
    result["unavailable"] = unavailable
    result["rows"] = selected
    atomic_write_bytes(out / "results.json", json.dumps(result, indent=2).encode())
    _write_csv(out / "results.csv", selected, metrics, result["knobs"])
    _plot(result, out, _with_derived(metrics))
    atomic_write_bytes(out / "summary.md", _summary(result, _with_derived(metrics)).encode())
    return result


def _bd_rates(curves: dict[str, list[dict]], anchor: str) -> dict[str, float | str]:
    """BD-rate (%, PCHIP, PSNR) of every codec against ``anchor``; a reason where it is undefined."""
    reference = [(p["bpp"], p["psnr"]) for p in curves[anchor]]
    return {name: bd_rate_or_reason(reference, [(p["bpp"], p["psnr"]) for p in curve])
            for name, curve in curves.items() if name != anchor}


def _legend(name: str, knob: str, curve: list[dict]) -> str:
    """``jpeg (quality 1-95)``: the codec, its knob and the knob's values from the lowest rate to the highest."""
    return f"{name} ({knob} {curve[0]['quality']:g}-{curve[-1]['quality']:g})"


def _plot(result: dict, out: Path, metrics: tuple[str, ...]) -> None:
    rate, curves, samples = metrics[0], result["curves"], result["samples"]
    labels = {name: _legend(name, result["knobs"][name], curve) for name, curve in curves.items()}
    for metric in (m for m in metrics[1:] if m not in PLOTTED_LEFT_OUT):
        series = {labels[n]: [(p[rate], p[metric]) for p in c if p.get(metric) is not None and math.isfinite(p[metric])]
                  for n, c in curves.items()}
        series = {n: s for n, s in series.items() if s}
        if series:
            plot_rd_curves(series, out / f"rd_{metric}.png", xlabel=f"{METRIC_LABELS[rate]} (log scale)",
                           ylabel=METRIC_LABELS[metric], title=f"{METRIC_LABELS[metric]} vs rate ({samples} samples)",
                           log_x=True)
    if "task" not in result:
        return
    task = result["task"]
    headline, reference = task["headline"], task["uncompressed"][task["headline"]]
    plot_rd_curves({labels[n]: [(p[rate], p["task"][headline]) for p in c] for n, c in curves.items()},
                   out / "task_vs_rate.png", xlabel=f"{METRIC_LABELS[rate]} (log scale)", ylabel=f"{task['name']} {headline}",
                   title=f"{task['name']}: {headline} vs rate ({samples} samples)", log_x=True,
                   reference=("uncompressed", reference))
    distortion = metrics[1]
    plot_rd_curves({labels[n]: [(p[distortion], p["task"][headline]) for p in c if math.isfinite(p[distortion])]
                    for n, c in curves.items()},
                   out / f"task_vs_{distortion}.png", xlabel=METRIC_LABELS[distortion], ylabel=f"{task['name']} {headline}",
                   title=f"{task['name']}: {headline} vs {METRIC_LABELS[distortion]}", reference=("uncompressed", reference))


def _scalar_task_fields(rows: list[dict]) -> list[str]:
    fields: dict[str, None] = {}
    for row in rows:
        for key, value in row.get("task", {}).items():
            if isinstance(value, (int, float, str)):
                fields[key] = None
    return list(fields)


def _write_csv(path: Path, rows: list[dict], metrics: tuple[str, ...], knobs: Mapping[str, str]) -> None:
    task_fields = _scalar_task_fields(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["codec", "knob", "quality", "file", "bytes", *metrics,
                                                *(f"task_{k}" for k in task_fields)],
                            extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "knob": knobs.get(row["codec"], ""),
                         **{f"task_{k}": row.get("task", {}).get(k) for k in task_fields}})
    atomic_write_bytes(path, buffer.getvalue().encode())


def _format(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value + 0.0:.{digits}g}"  # + 0.0 turns -0.0 into 0
    return "" if value is None else str(value)


def _summary(result: dict, metrics: tuple[str, ...]) -> str:
    task = result.get("task")
    title = f"# Codec evaluation ({result['samples']} samples" + (f", task {task['name']})" if task else ")")
    headers = ["codec", "knob", "value", *(METRIC_LABELS[m] for m in metrics)]
    if task:
        headers += [task["headline"], "degradation"]
    lines = [title, "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for name, curve in result["curves"].items():
        for p in curve:
            cells = [name, result["knobs"][name], f"{p['quality']:g}", *(_format(p.get(m)) for m in metrics)]
            if task:
                cells += [_format(p["task"][task["headline"]]), _format(p["degradation"])]
            lines.append("| " + " | ".join(cells) + " |")
    if task:
        reference = ", ".join(f"{k} {_format(v)}" for k, v in task["uncompressed"].items())
        lines += ["", f"Uncompressed: {reference}. Degradation = loss of {task['headline']} against it (positive = worse).",
                  "", f"Correlation with {task['headline']} over all operating points:", ""]
        lines += [f"- {METRIC_LABELS[m]}: Spearman {c['spearman']:+.3f}, Pearson {c['pearson']:+.3f} ({c['points']} points)"
                  for m, c in task["correlation_with_headline"].items()]
        rate = METRIC_LABELS[metrics[0]]
        budgets = [f"{b:g}" for b in DEGRADATION_BUDGETS]
        lines += ["", f"Lowest rate ({rate}) keeping the degradation within a budget (interpolated in log-rate; "
                  "- = never within it):", "", "| codec | " + " | ".join(f"<= {b}" for b in budgets) + " |",
                  "|---|" + "---|" * len(budgets)]
        lines += [f"| {name} | " + " | ".join(_format(rates[b]) or "-" for b in budgets) + " |"
                  for name, rates in task["rate_within_degradation"].items()]
    if "bd_rate_percent_vs_anchor" in result:
        lines += ["", f"BD-rate (PSNR, PCHIP) against {result['anchor']}, negative = fewer bits:", ""]
        lines += [f"- {name}: {value}{'%' if isinstance(value, float) else ''}"
                  for name, value in result["bd_rate_percent_vs_anchor"].items()]
    if result["unavailable"]:
        lines += ["", "Unavailable: " + "; ".join(f"{k} ({v})" for k, v in result["unavailable"].items())]
    versions = ", ".join(f"{name} {value}" for name, value in result["environment"].items() if value is not None)
    lines += ["", f"Measured {result['date_utc']} with {versions}."]
    return "\n".join(lines) + "\n"
