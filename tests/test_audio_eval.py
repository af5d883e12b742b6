"""Audio side of codec eval: Opus/MP3 adapters through ffmpeg and the PocketSphinx word-error-rate task."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from conftest import require_shared
from neuralcodec.errors import InputError, NeuralCodecError
from neuralcodec.eval import ffmpeg_codecs
from neuralcodec.eval.audio_codecs import AUDIO_CODECS, MP3, OPUS, audio_adapter
from neuralcodec.metrics import kilobits_per_second
from neuralcodec.metrics import snr_db
from neuralcodec.eval.tasks.base import Sample
from neuralcodec.eval.tasks.speech import SpeechRecognitionTask, normalize_text

CODECS = sorted(AUDIO_CODECS)


def tone(sample_rate: int, seconds: float = 1.0) -> np.ndarray:
    """A 440 Hz tone at half scale plus a little white noise (SNR of the tone to the noise: 31 dB)."""
    t = np.arange(round(sample_rate * seconds)) / sample_rate
    noise = np.random.default_rng(0).normal(0.0, 0.01, t.size)
    return (0.5 * np.sin(2 * np.pi * 440.0 * t) + noise).astype(np.float32)


def available(name: str):
    adapter = audio_adapter(name)
    reason = adapter.unavailable_reason()
    if reason:
        pytest.skip(f"{name}: {reason}")
    return adapter


@pytest.mark.parametrize("name", CODECS)
@pytest.mark.parametrize("sample_rate", [16000, 22050])
def test_round_trip_keeps_rate_and_length_and_meets_the_bitrate(name: str, sample_rate: int) -> None:
    adapter = available(name)
    wave = tone(sample_rate)
    low, high = min(adapter.qualities), max(adapter.qualities)
    data = adapter.encode(wave, sample_rate, high)
    decoded, rate = adapter.decode(data)
    assert rate == sample_rate and decoded.shape == wave.shape and decoded.dtype == np.float32
    assert snr_db(wave, decoded) > 15.0
    assert 0.5 < kilobits_per_second(len(data), wave.size, sample_rate) / high < 2.0  # VBR; measured 1.1-1.45
    assert len(adapter.encode(wave, sample_rate, low)) < len(data) / 2


def test_mp3_codes_at_the_lowest_rate_holding_lames_lowpass_never_above_the_input() -> None:
    assert MP3._coding_rate(8, 22050) == 8000
    assert MP3._coding_rate(32, 44100) == 22050
    assert MP3._coding_rate(64, 16000) == 16000  # capped by the input
    assert MP3._coding_rate(48, 20000) == 16000  # the highest MP3 rate under a non-standard input rate
    assert MP3._coding_rate(8, 4000) == 8000  # MP3's lowest rate


def test_kilobits_per_second() -> None:
    assert kilobits_per_second(1000, 16000, 16000) == 8.0
    assert kilobits_per_second(300, 22050, 44100) == pytest.approx(4.8)
    with pytest.raises(InputError):
        kilobits_per_second(10, 0, 16000)


def test_unknown_codec_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match="opus.*mp3|mp3.*opus"):
        audio_adapter("aac")


@pytest.mark.parametrize("name", CODECS)
def test_unavailable_without_ffmpeg_or_without_the_encoder(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = audio_adapter(name)
    monkeypatch.setattr(ffmpeg_codecs.shutil, "which", lambda program: f"/usr/bin/{program}")
    monkeypatch.setattr(ffmpeg_codecs, "_encoders", lambda: frozenset())
    assert adapter.unavailable_reason() == f"this ffmpeg has no {adapter.encoder} encoder"
    monkeypatch.setattr(ffmpeg_codecs.shutil, "which", lambda program: None)
    assert "not installed" in adapter.unavailable_reason()
    with pytest.raises(NeuralCodecError, match=f"{name} is unavailable: ffmpeg is not installed"):
        adapter.encode(tone(16000), 16000, adapter.qualities[0])


@pytest.mark.parametrize("name", CODECS)
@pytest.mark.parametrize("wave, sample_rate, match", [
    (np.zeros((2, 100), np.float32), 16000, "1-D float32"),
    (np.zeros(100, np.int16), 16000, "1-D float32"),
    (np.zeros(100, np.float64), 16000, "1-D float32"),
    (np.zeros(0, np.float32), 16000, "length"),
    (np.array([0.0, np.nan], np.float32), 16000, "NaN"),
    (np.zeros(100, np.float32), 0, "sample_rate"),
    (np.zeros(100, np.float32), 16000.0, "sample_rate"),
])
def test_bad_waves_raise_input_error(name: str, wave: np.ndarray, sample_rate: int, match: str) -> None:
    adapter = audio_adapter(name)
    with pytest.raises(InputError, match=match):
        adapter.encode(wave, sample_rate, adapter.qualities[0])


def test_bad_bitrates_and_streams_raise_input_error() -> None:
    wave = tone(16000, 0.1)
    with pytest.raises(InputError, match="one of 8, 16"):
        MP3.encode(wave, 16000, 10)
    with pytest.raises(InputError, match="0.5-256"):
        OPUS.encode(wave, 16000, 300)
    for adapter in (OPUS, MP3):
        with pytest.raises(InputError, match="too short"):
            adapter.decode(b"\x00" * 8)
        with pytest.raises(InputError, match="header says 0 samples"):
            adapter.decode(b"\x00\x00\x3e\x80\x00\x00\x00\x00garbage")


def test_corrupt_stream_is_a_clear_ffmpeg_error() -> None:
    available("opus")
    with pytest.raises(NeuralCodecError, match="ffmpeg opus decode failed"):
        OPUS.decode(b"\x00\x00\x3e\x80\x00\x00\x00\x10" + b"not an ogg stream" * 4)


@pytest.mark.parametrize("text, expected", [
    ("Printing, in the only sense with which we are concerned,", "printing in the only sense with which we are concerned"),
    ("AND SO MY FELLOW AMERICANS", "and so my fellow americans"),
    ("Don\u2019t STOP\u2014now!", "don't stop now"),
    ("'Quoted' words -- and wood-cuts.", "quoted words and wood cuts"),
    ("  tabs\tand\nnewlines  ", "tabs and newlines"),
    ("Fourteen fifty-five; 1455", "fourteen fifty five 1455"),
    ("?!", ""),
])
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


def test_summarize_pools_errors_over_all_reference_words() -> None:
    task = SpeechRecognitionTask()
    scores = [{"errors": 2, "words": 10, "hypothesis": ""}, {"errors": 1, "words": 5, "hypothesis": ""},
              {"errors": 0, "words": 5, "hypothesis": ""}]
    assert task.summarize(scores) == {"wer": 0.15, "samples": 3}  # 3 errors / 20 words (mean of rates: 0.133)
    assert math.isnan(task.summarize([])["wer"])


def test_score_counts_substitutions_deletions_and_insertions(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("jiwer")
    task = SpeechRecognitionTask()
    sample = Sample("jfk", tone(16000, 0.1), "And so, my fellow Americans: ask not", 16000)
    monkeypatch.setattr(task, "_recognize", lambda wave, rate: "and all my fellow american ask not what")
    # reference: and so my fellow americans ask not (7 words); 2 substitutions + 1 insertion
    assert task.score(sample, sample.signal) == {"errors": 3, "words": 7,
                                                 "hypothesis": "and all my fellow american ask not what"}
    monkeypatch.setattr(task, "_recognize", lambda wave, rate: "")
    assert task.score(sample, sample.signal)["errors"] == 7  # all deleted
    with pytest.raises(InputError, match="1-D float"):
        task.score(sample, np.zeros((2, 10), np.float32))


def write_speech_folder(root: Path) -> None:
    soundfile = pytest.importorskip("soundfile")
    (root / "clips").mkdir(parents=True)
    stereo = np.stack([tone(44100, 0.2), np.zeros(8820, np.float32)], axis=1)
    soundfile.write(root / "clips" / "a.wav", stereo, 44100, subtype="PCM_16")
    soundfile.write(root / "clips" / "b.flac", tone(16000, 0.3), 16000)
    (root / "manifest.csv").write_text("path,corpus,speaker,sample_rate,channels,duration_s,transcript\n"
                                       "clips/a.wav,test,x,44100,2,0.2,\"Hello, world.\"\n"
                                       "clips/b.flac,test,y,16000,1,0.3,GOODBYE\n", encoding="utf-8")


def test_samples_read_the_manifest_and_mix_to_mono(tmp_path: Path) -> None:
    write_speech_folder(tmp_path)
    samples = SpeechRecognitionTask().samples(tmp_path)
    assert [(s.key, s.target, s.sample_rate, s.signal.shape) for s in samples] == [
        ("clips/a.wav", "Hello, world.", 44100, (8820,)), ("clips/b.flac", "GOODBYE", 16000, (4800,))]
    assert samples[0].signal.dtype == np.float32
    np.testing.assert_allclose(samples[0].signal, tone(44100, 0.2) / 2, atol=1e-4)  # 16-bit, averaged with silence
    assert len(SpeechRecognitionTask().samples(tmp_path, limit=1)) == 1


def test_samples_reject_bad_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task = SpeechRecognitionTask()
    with pytest.raises(InputError, match="no manifest.csv"):
        task.samples(tmp_path)
    monkeypatch.setattr("neuralcodec.eval.tasks.speech.DEFAULT_DATA", tmp_path / "missing")
    with pytest.raises(InputError, match="pass --data"):
        task.samples(None)
    (tmp_path / "manifest.csv").write_text("path,text\nclip.wav,hello\n", encoding="utf-8")
    with pytest.raises(InputError, match="'transcript'"):
        task.samples(tmp_path)
    (tmp_path / "manifest.csv").write_text("path,transcript\nclip.wav,--\n", encoding="utf-8")
    with pytest.raises(InputError, match="no words"):
        task.samples(tmp_path)
    (tmp_path / "manifest.csv").write_text("path,transcript\nclip.wav,hello\n", encoding="utf-8")
    pytest.importorskip("soundfile")
    with pytest.raises(InputError, match="cannot read audio"):
        task.samples(tmp_path)


def test_pocketsphinx_recognizes_a_real_clip_deterministically() -> None:
    for module in ("pocketsphinx", "jiwer", "soundfile"):
        pytest.importorskip(module)
    folder = require_shared("speech")
    task = SpeechRecognitionTask()
    clips = {s.key: s for s in task.samples(folder, limit=12)}
    clip = clips["ljspeech_subset/wavs/LJ001-0012.flac"]  # 8.2 s, 17 words; measured WER 0
    short = clips["ljspeech_subset/wavs/LJ001-0008.flac"]
    first = task.score(short, short.signal)
    scores = [task.score(clip, clip.signal)]
    assert task.summarize(scores)["wer"] < 0.2
    assert task.score(short, short.signal) == first  # no state carried over from the clip scored in between


def test_codec_eval_speech_task_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner on generated audio: kbit/s, SNR and WER columns, degradation against the original and the
    task plots; the recognizer is replaced by one that hears the words only above 20 dB SNR."""
    pytest.importorskip("jiwer")
    if OPUS.unavailable_reason():
        pytest.skip(OPUS.unavailable_reason())
    from neuralcodec.metrics import snr_db
    from neuralcodec.eval.runner import evaluate

    write_speech_folder(tmp_path / "speech")
    task = SpeechRecognitionTask()
    originals = {s.key: s for s in task.samples(tmp_path / "speech")}
    transcripts = {s.key: s.target for s in originals.values()}
    current: dict[str, str] = {}
    real_score = task.score

    def score(original: Sample, decoded: np.ndarray) -> dict:
        current["words"] = transcripts[original.key] if snr_db(original.signal, decoded) > 20 else "noise"
        return real_score(original, decoded)

    monkeypatch.setattr(task, "_recognize", lambda wave, rate: current["words"])
    monkeypatch.setattr(task, "score", score)
    result = evaluate(["opus"], tmp_path / "speech", tmp_path / "out", task=task, qualities={"opus": [6, 64]},
                      progress=False)
    assert result["modality"] == "audio" and result["task"]["uncompressed"]["wer"] == 0.0
    low, high = result["curves"]["opus"]
    assert low["kbps"] < high["kbps"] and low["snr"] < high["snr"]
    for point in (low, high):
        assert point["degradation"] == pytest.approx(point["task"]["wer"])  # WER increase over 0
    assert high["task"]["wer"] <= low["task"]["wer"]
    for name in ("rd_snr.png", "task_vs_rate.png", "task_vs_snr.png", "summary.md"):
        assert (tmp_path / "out" / name).stat().st_size > 0
