"""`codec eval`: sweep codecs over their quality knobs on a set of samples, score a downstream task, report.

Without a task the samples are the images of a folder and the report is rate-distortion only. With a
task (:mod:`neuralcodec.eval.tasks`) the task supplies its samples (images or audio) and scores every
decoded sample; the uncompressed samples are scored too, as the reference.

Every (codec, quality, sample) result is appended to ``OUT/rows.jsonl`` as soon as it is measured, so
an interrupted run resumes where it stopped (keyed by codec, knob value and sample key). The report
(:func:`neuralcodec.eval.report.write_report`) is rewritten at the end of every run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from neuralcodec.errors import InputError
from neuralcodec.eval.measure import measure_audio, measure_image
from neuralcodec.eval.report import REFERENCE_CODEC, write_report
from neuralcodec.eval.tasks import PerceptionTask, Sample
from neuralcodec.media.images import list_images, read_rgb

ROWS_NAME = "rows.jsonl"


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


def _adapter(name: str, modality: str) -> Any:
    if modality == "audio":
        from neuralcodec.eval.audio_codecs import audio_adapter

        return audio_adapter(name)
    from neuralcodec.eval.adapters import image_adapter

    return image_adapter(name)


def _image_samples(data: str | Path, limit: int | None) -> list[Sample]:
    return [Sample(path.name, read_rgb(path)) for path in list_images(data)[:limit]]


def _round_trip(adapter: Any, sample: Sample, quality: float) -> tuple[dict[str, Any], np.ndarray]:
    if sample.sample_rate is not None:
        return measure_audio(adapter, sample.signal, sample.sample_rate, quality)
    return measure_image(adapter, sample.signal, quality)


class _RowLog:
    """The rows measured so far (from ``rows.jsonl``) and appending new ones to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = _load_rows(path)
        self.done = {(r["codec"], r["quality"], r["file"]) for r in self.rows}

    def add(self, row: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        self.rows.append(row)
        self.done.add((row["codec"], row["quality"], row["file"]))


def _sweeps(codecs: Sequence[str], modality: str,
            qualities: Mapping[str, Sequence[float]]) -> list[tuple[Any, tuple[float, ...]]]:
    """(adapter, knob values) per codec name, every name and value checked (InputError) before any coding."""
    unknown = set(qualities) - set(codecs)
    if unknown:
        raise InputError(f"--qualities names {', '.join(sorted(unknown))}, which is not in the codecs evaluated "
                         f"({', '.join(codecs)})")
    sweeps = []
    for name in codecs:
        adapter = _adapter(name, modality)
        sweep = tuple(float(q) for q in qualities.get(name, adapter.qualities))
        for quality in sweep:
            adapter.check_quality(quality)
        sweeps.append((adapter, sweep))
    return sweeps


def _anchor_name(anchor: str | None, codecs: Sequence[str], adapters: Sequence[Any]) -> str | None:
    """The result name of ``anchor`` (given as in ``codecs`` or as a result name); InputError if it is neither."""
    if anchor is None:
        return None
    names = {**{name: adapter.name for name, adapter in zip(codecs, adapters)}, **{a.name: a.name for a in adapters}}
    if anchor not in names:
        raise InputError(f"--anchor {anchor} is not one of the codecs evaluated ({', '.join(codecs)})")
    return names[anchor]


def evaluate(codecs: Sequence[str], data: str | Path | None, out_dir: str | Path, task: PerceptionTask | None = None,
             limit: int | None = None, anchor: str | None = None,
             qualities: Mapping[str, Sequence[float]] | None = None, progress: bool = True) -> dict:
    """Sweep ``codecs`` (adapter names) over ``data``, optionally scoring ``task``; see the module docstring.

    ``qualities`` replaces the default sweep of the codecs it names. Every codec name, knob value and the
    ``anchor`` are checked before any sample is read or coded. Returns the report as a dict.
    """
    modality = task.modality if task else "image"
    sweeps = _sweeps(codecs, modality, qualities or {})
    anchor = _anchor_name(anchor, codecs, [adapter for adapter, _ in sweeps])
    samples = task.samples(Path(data) if data is not None else None, limit) if task else _image_samples(data, limit)
    if not samples:
        raise InputError(f"no samples to evaluate in {data}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = _RowLog(out / ROWS_NAME)
    if task is not None:
        for sample in tqdm([s for s in samples if (REFERENCE_CODEC, 0, s.key) not in log.done], desc="uncompressed",
                           unit="sample", disable=not progress):
            log.add({"codec": REFERENCE_CODEC, "quality": 0, "file": sample.key, "task": task.score(sample, sample.signal)})
    unavailable: dict[str, str] = {}
    for adapter, sweep in sweeps:
        reason = adapter.unavailable_reason()
        if reason:
            unavailable[adapter.name] = reason
            continue
        todo = [(q, s) for q in sweep for s in samples if (adapter.name, q, s.key) not in log.done]
        for quality, sample in tqdm(todo, desc=adapter.name, unit="sample", disable=not progress or not todo):
            measured, decoded = _round_trip(adapter, sample, quality)
            row = {"codec": adapter.name, "quality": quality, "file": sample.key, **measured}
            if task is not None:
                row["task"] = task.score(sample, decoded)
            log.add(row)
    knobs = {adapter.name: adapter.knob for adapter, _ in sweeps}
    rows = [r for r in log.rows if r["codec"] in {*knobs, REFERENCE_CODEC}]
    return write_report(rows, out, [s.key for s in samples], unavailable, anchor, knobs, task, modality)
