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
