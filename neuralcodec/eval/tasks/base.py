"""The interface every machine-perception task implements, and the samples it scores.

A task loads its own labelled samples (:meth:`PerceptionTask.samples`), scores one decoded sample
against its original (:meth:`PerceptionTask.score`, returning JSON-able per-sample statistics such as
``{"correct": 1}`` or ``{"errors": 3, "words": 17}``) and turns the statistics of many samples into
its metrics (:meth:`PerceptionTask.summarize`). The evaluation runner scores the uncompressed
samples the same way, so every metric has a reference and the headline figure is its drop.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from neuralcodec.errors import NeuralCodecError

Modality = Literal["image", "audio"]


def optional_module(module: str, feature: str) -> Any:
    """Import one of the ``eval`` extra's modules, naming the extra when ``feature`` needs it and it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise NeuralCodecError(f"{feature} needs {module}: pip install 'neuralcodec[eval]'") from None


@dataclass(frozen=True)
class Sample:
    """One input of a task.

    ``signal`` is an ``H x W x 3`` uint8 RGB image, an ``H x W`` uint8 grey image, or a 1-D float32
    mono waveform in [-1, 1] (then ``sample_rate`` is set). ``target`` is what the task needs to
    score it (a class index, an identity, a transcript); ``key`` names it uniquely within the task.
    """

    key: str
    signal: np.ndarray
    target: Any = None
    sample_rate: int | None = None
    extra: dict = field(default_factory=dict)


class PerceptionTask(Protocol):
    """A downstream model whose quality on decoded inputs the evaluation measures."""

    name: str
    modality: Modality
    headline: str
    """The key of :meth:`summarize`'s output reported as the task metric (e.g. ``"accuracy"``)."""
    higher_is_better: bool

    def samples(self, data: Path | None, limit: int | None = None) -> list[Sample]:
        """The task's samples: from ``data`` when given, else from its default dataset."""

    def score(self, original: Sample, decoded: np.ndarray) -> dict[str, Any]:
        """Per-sample statistics of the task on ``decoded`` (same kind of array as ``original.signal``)."""

    def summarize(self, scores: Sequence[dict[str, Any]]) -> dict[str, float]:
        """Metrics over many samples' statistics; always contains ``headline``."""


def mean_of(scores: Sequence[dict[str, Any]], key: str) -> float:
    """Mean of one per-sample statistic (NaN when there are no samples)."""
    return float(np.mean([s[key] for s in scores])) if scores else float("nan")
