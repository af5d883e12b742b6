"""Speech recognition word error rate with PocketSphinx's bundled US-English model (fully offline).

Clips come from a folder with a ``manifest.csv`` (``path,...,transcript``; paths relative to the folder,
any format soundfile reads), by default ``../shared/data/speech`` beside the checkout. Each decoded clip
is mixed to mono, resampled to 16 kHz 16-bit (what the model takes) and recognised as one utterance.
The recogniser's feature state is reset before every clip, so a clip's result never depends on the
clips scored before it. Hypothesis and transcript are compared after :func:`normalize_text`; the
task's WER is corpus-level: all word errors over all reference words.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from neuralcodec.errors import InputError
from neuralcodec.eval.tasks.base import Modality, Sample, optional_module

DEFAULT_DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "speech"
RECOGNIZER_RATE = 16000
_NOT_WORD = re.compile(r"[^\w']+|_")
_STRAY_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")


def normalize_text(text: str) -> str:
    """Lowercase words separated by single spaces: curly apostrophes become straight ones, every other
    character that is not a letter, digit or in-word apostrophe ("don't") becomes a space. Numbers are
    left as written (the speech set's transcripts spell them out)."""
    words = _NOT_WORD.sub(" ", text.lower().replace("\u2019", "'"))
    return " ".join(_STRAY_APOSTROPHE.sub(" ", words).split())


def load_mono(path: Path) -> tuple[np.ndarray, int]:
    """(1-D float32 waveform in [-1, 1], sample rate) of an audio file, channels averaged."""
    try:
        frames, rate = optional_module("soundfile", "speech-wer").read(path, dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as error:  # soundfile's LibsndfileError is a RuntimeError
        raise InputError(f"cannot read audio {path}: {error}") from None
    if frames.size == 0:
        raise InputError(f"{path} holds no audio")
    return frames.mean(axis=1, dtype=np.float32), int(rate)


def _to_pcm16(wave: np.ndarray, sample_rate: int) -> bytes:
    """``wave`` resampled to the recogniser's 16 kHz, as little-endian 16-bit PCM."""
    common = gcd(sample_rate, RECOGNIZER_RATE)
    resampled = resample_poly(wave.astype(np.float64), RECOGNIZER_RATE // common, sample_rate // common)
    return np.round(np.clip(resampled, -1.0, 1.0) * 32767).astype("<i2").tobytes()


class SpeechRecognitionTask:
    """Word error rate of PocketSphinx (default English model) against reference transcripts.

    Per clip: ``errors`` (substitutions + deletions + insertions), ``words`` (reference words) and the
    normalized ``hypothesis``; the headline ``wer`` pools them over all clips."""

    name = "speech-wer"
    modality: Modality = "audio"
    headline = "wer"
    higher_is_better = False

    def __init__(self) -> None:
        self._decoder: Any = None

    def samples(self, data: Path | None, limit: int | None = None) -> list[Sample]:
        """The clips of ``data``'s ``manifest.csv`` in its order (the first ``limit`` when given)."""
        root = Path(data) if data is not None else DEFAULT_DATA
        table = root / "manifest.csv"
        if not table.is_file():
            hint = f"pass --data, or put the speech set at {DEFAULT_DATA}" if data is None else \
                "expected a speech folder with manifest.csv, e.g. ../shared/data/speech"
            raise InputError(f"{root} has no manifest.csv ({hint})")
        with open(table, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or not {"path", "transcript"} <= set(rows[0]):
            raise InputError(f"{table} must have 'path' and 'transcript' columns and at least one row")
        samples = []
        for row in rows[:limit]:
            if not normalize_text(row["transcript"]):
                raise InputError(f"{table}: {row['path']} has no words in its transcript")
            wave, rate = load_mono(root / row["path"])
            samples.append(Sample(row["path"], wave, row["transcript"], rate))
        return samples

    def _recognize(self, wave: np.ndarray, sample_rate: int) -> str:
        if self._decoder is None:
            self._decoder = optional_module("pocketsphinx", "speech-wer").Decoder(loglevel="FATAL")
        decoder = self._decoder
        decoder.reinit_feat()  # forget the noise and cepstral-mean statistics of the previous clip
        decoder.start_utt()
        decoder.process_raw(_to_pcm16(wave, sample_rate), full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""

    def score(self, original: Sample, decoded: np.ndarray) -> dict[str, Any]:
        if not isinstance(decoded, np.ndarray) or decoded.ndim != 1 or decoded.size == 0 \
                or not np.issubdtype(decoded.dtype, np.floating):
            raise InputError(f"expected a non-empty 1-D float waveform, got {getattr(decoded, 'dtype', '')} "
                             f"{getattr(decoded, 'shape', type(decoded).__name__)}")
        if original.sample_rate is None:
            raise InputError(f"{original.key} is not an audio sample (no sample rate)")
        reference = normalize_text(original.target)
        hypothesis = normalize_text(self._recognize(decoded, original.sample_rate))
        counts = optional_module("jiwer", "speech-wer").process_words(reference, hypothesis)
        return {"errors": counts.substitutions + counts.deletions + counts.insertions,
                "words": len(reference.split()), "hypothesis": hypothesis}

    def summarize(self, scores: Sequence[dict[str, Any]]) -> dict[str, float]:
        words = sum(s["words"] for s in scores)
        wer = sum(s["errors"] for s in scores) / words if words else float("nan")
        return {"wer": wer, "samples": len(scores)}
