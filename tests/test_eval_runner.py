"""`codec eval`: adapters behind one interface, the resumable sweep and its reports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec import container
from neuralcodec.cli import main
from neuralcodec.codecs.image.codec import to_uint8_image
from neuralcodec.codecs.registry import load_codec
from neuralcodec.errors import InputError, NeuralCodecError
from neuralcodec.eval.adapters import LearnedImageAdapter, image_adapter
from neuralcodec.eval.ffmpeg_codecs import FFMPEG_CODECS
from neuralcodec.metrics import psnr
from neuralcodec.eval.runner import ROWS_NAME, evaluate


@pytest.fixture
def image_folder(tmp_path: Path, photo: np.ndarray) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "a.png")
    Image.fromarray(np.ascontiguousarray(photo[:, ::-1])).save(folder / "b.png")
    return folder


@pytest.mark.parametrize("name", sorted(FFMPEG_CODECS))
def test_ffmpeg_adapters_round_trip_or_say_why_not(name: str, photo: np.ndarray):
    adapter = FFMPEG_CODECS[name]
    reason = adapter.unavailable_reason()
    if reason is not None:
        assert "ffmpeg" in reason or adapter.encoder in reason
        with pytest.raises(NeuralCodecError, match="unavailable"):
            adapter.encode(photo, adapter.qualities[0])
        return
    odd = np.ascontiguousarray(photo[:95, :135])  # odd sizes: padded for 4:2:0 and cropped back
    low, high = (adapter.encode(odd, q) for q in (adapter.qualities[0], adapter.qualities[-1]))
    assert len(low) < len(high)
    decoded = adapter.decode(high)
    assert decoded.shape == odd.shape and psnr(odd, decoded) > 30


def test_learned_adapter_uses_the_registry(tiny_weights: Path, photo: np.ndarray):
    adapter = image_adapter(str(tiny_weights))
    assert isinstance(adapter, LearnedImageAdapter) and adapter.qualities == (1.0, 2.0)
    data = adapter.encode(photo, 2.0)
    assert adapter.decode(data).shape == photo.shape
    with pytest.raises(InputError):
        adapter.encode(photo[..., 0], 1.0)


def test_refine_suffix_gives_a_refining_encoder_of_the_same_model(tiny_weights: Path, photo: np.ndarray):
    plain = image_adapter(str(tiny_weights))
    refined = image_adapter(f"{tiny_weights}+refine3")
    assert isinstance(refined, LearnedImageAdapter) and refined.name == f"{plain.name}+refine3"
    assert refined.qualities == plain.qualities
    codec = load_codec(str(tiny_weights))
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255.0
    payload, x_hat, _ = codec.compress(x, 2.0, refine_steps=3)
    payload, compact_code = codec.packed(payload)
    data = refined.encode(photo, 2.0)
    assert data == container.serialize(payload, compact_code)
    assert np.array_equal(refined.decode(data), to_uint8_image(x_hat))
    with pytest.raises(InputError, match="unknown codec 'jpeg\\+refine3'"):
        image_adapter("jpeg+refine3")


def test_unknown_codec_names_the_known_ones():
    with pytest.raises(InputError, match="jpeg"):
        image_adapter("no-such-codec")


def test_sweep_writes_reports_and_resumes(image_folder: Path, tmp_path: Path, tiny_weights: Path):
    out = tmp_path / "results"
    result = evaluate(["jpeg", "webp", str(tiny_weights)], image_folder, out, progress=False)
    expected_rows = 2 * (len(image_adapter("jpeg").qualities) + len(image_adapter("webp").qualities) + 2)
    assert len(result["rows"]) == expected_rows
    assert {"webp", "tiny-test"} <= set(result["bd_rate_percent_vs_anchor"]) and result["anchor"] == "jpeg"
    for name in ("results.json", "results.csv", "rd_psnr.png", "summary.md"):
        assert (out / name).stat().st_size > 0
    with open(out / "results.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == expected_rows and float(table[0]["bpp"]) > 0
    jpeg = result["curves"]["jpeg"]
    assert all(a["bpp"] <= b["bpp"] for a, b in zip(jpeg, jpeg[1:]))
    assert jpeg[-1]["psnr"] > jpeg[0]["psnr"] + 5

    lines = (out / ROWS_NAME).read_text().splitlines()
    with open(out / ROWS_NAME, "a") as handle:  # a line cut by a killed run is measured again
        handle.write(lines[-1][: len(lines[-1]) // 2])
    again = evaluate(["jpeg", "webp", str(tiny_weights)], image_folder, out, progress=False)
    assert len(again["rows"]) == expected_rows
    assert again["curves"]["jpeg"] == result["curves"]["jpeg"]


def test_cli_eval_prints_the_summary(image_folder: Path, tmp_path: Path, capsys):
    assert main(["eval", "--codecs", "jpeg,webp", "--data", str(image_folder), "--out", str(tmp_path / "r"),
                 "--limit", "1"]) == 0
    printed = capsys.readouterr().out
    assert "BD-rate" in printed and "webp" in printed
    assert json.loads((tmp_path / "r" / "results.json").read_text())["samples"] == 1
    assert main(["eval", "--codecs", "bogus", "--data", str(image_folder), "--out", str(tmp_path / "r")]) == 2


class _NoSamplesTask:
    """A task that fails the test if the runner asks it for samples."""

    name, modality, headline, higher_is_better = "never", "image", "accuracy", True

    def samples(self, data, limit=None):
        raise AssertionError("samples were read before the codecs were checked")


@pytest.mark.parametrize("codecs, qualities, anchor, message", [
    (["jpeg", "bogus"], {}, None, "unknown codec 'bogus'"),
    (["jpeg"], {"webp": [50]}, None, "--qualities names webp, which is not in the codecs evaluated"),
    (["jpeg", "hevc"], {"jpeg": [50, 0]}, None, r"jpeg quality must be in \[1, 95\], got 0"),
    (["av1"], {"av1": [30.5]}, None, r"av1 CRF must be an integer in \[0, 63\], got 30.5"),
    (["hevc"], {"hevc": [52]}, None, r"hevc CRF must be in \[0, 51\], got 52"),
    (["jpegxl"], {"jpegxl": [-1]}, None, r"jpegxl Butteraugli distance must be in \[0, 15\]"),
    (["jpeg", "webp"], {}, "avif", "--anchor avif is not one of the codecs evaluated"),
])
def test_names_knob_values_and_anchor_are_checked_before_any_work(tmp_path: Path, codecs, qualities, anchor, message):
    with pytest.raises(InputError, match=message):
        evaluate(codecs, tmp_path / "no-images-here", tmp_path / "out", task=_NoSamplesTask(), qualities=qualities,
                 anchor=anchor, progress=False)
    assert not (tmp_path / "out").exists()


def test_learned_knob_values_are_checked_and_the_anchor_may_be_given_as_listed(tiny_weights: Path, tmp_path: Path,
                                                                            image_folder: Path):
    with pytest.raises(InputError, match="quality must be between 1 and 2"):
        evaluate([str(tiny_weights)], image_folder, tmp_path / "out", qualities={str(tiny_weights): [3]}, progress=False)
    result = evaluate(["jpeg", str(tiny_weights)], image_folder, tmp_path / "out", qualities={"jpeg": [20, 80]},
                      anchor=str(tiny_weights), limit=1, progress=False)
    assert result["anchor"] == "tiny-test" and set(result["bd_rate_percent_vs_anchor"]) == {"jpeg"}


def test_reports_name_each_codecs_knob_plot_log_rates_and_ms_ssim_in_db(tmp_path: Path, photo: np.ndarray,
                                                                        tiny_weights: Path,
                                                                        monkeypatch: pytest.MonkeyPatch):
    import neuralcodec.eval.report as report

    folder = tmp_path / "large"  # 192 x 272: large enough for MS-SSIM
    folder.mkdir()
    Image.fromarray(np.tile(photo, (2, 2, 1))).save(folder / "tiled.png")
    plots = []
    monkeypatch.setattr(report, "plot_rd_curves", lambda curves, path, **kw: plots.append((Path(path).name, curves, kw)))
    out = tmp_path / "out"
    result = evaluate(["jpeg", str(tiny_weights)], folder, out, qualities={"jpeg": [90, 10, 50]}, progress=False)
    assert result["knobs"] == {"jpeg": "quality", "tiny-test": "rate level"}
    for point in result["curves"]["jpeg"]:
        assert point["ms_ssim_db"] == pytest.approx(-10 * np.log10(1 - point["ms_ssim"]))
    assert {name for name, _, _ in plots} == {"rd_psnr.png", "rd_psnr_y.png", "rd_ssim.png", "rd_ms_ssim_db.png"}
    assert all(kw["log_x"] and kw["xlabel"] == "bits per pixel (log scale)" for _, _, kw in plots)
    by_name = {name: (curves, kw) for name, curves, kw in plots}
    curves, kw = by_name["rd_ms_ssim_db.png"]
    assert kw["ylabel"] == "MS-SSIM (dB)"
    assert set(curves) == {"jpeg (quality 10-90)", "tiny-test (rate level 1-2)"}
    with open(out / "results.csv", newline="") as handle:
        assert {(row["codec"], row["knob"]) for row in csv.DictReader(handle)} == {("jpeg", "quality"),
                                                                                   ("tiny-test", "rate level")}
    summary = (out / "summary.md").read_text()
    assert "| codec | knob | value | bits per pixel |" in summary and "| jpeg | quality | 90 |" in summary
    assert "MS-SSIM (dB)" in summary


def test_results_record_the_software_versions_and_the_utc_date(image_folder: Path, tmp_path: Path):
    import platform
    import shutil
    import subprocess
    from datetime import datetime, timezone

    import PIL

    before = datetime.now(timezone.utc).replace(microsecond=0)
    evaluate(["jpeg"], image_folder, tmp_path / "out", qualities={"jpeg": [50]}, progress=False)
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert before <= datetime.fromisoformat(result["date_utc"]) <= datetime.now(timezone.utc)
    environment = result["environment"]
    assert environment["python"] == platform.python_version() and environment["pillow"] == PIL.__version__
    assert environment["torch"] == torch.__version__.split("+")[0] and environment["neuralcodec"]
    if shutil.which("ffmpeg"):
        first_line = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
        assert first_line.startswith(f"ffmpeg version {environment['ffmpeg']} ")
    else:
        assert environment["ffmpeg"] is None
    assert f"python {platform.python_version()}" in (tmp_path / "out" / "summary.md").read_text()
