"""`codec encode INPUT... -o DIR` and `codec decode INPUT... -o DIR`: one output per input, byte-identical to
single-file runs, failures reported per file without losing the others, and the two-path form unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuralcodec.cli import main


def _run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def photos(tmp_path: Path, photo: np.ndarray) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "a.png")
    Image.fromarray(photo[:64, :80]).convert("L").save(folder / "b.png")
    Image.fromarray(photo[::-1]).save(folder / "c.jpg", quality=90)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_batch_outputs_are_those_of_single_runs(tmp_path: Path, photos: Path, tiny_weights: Path, capsys):
    model = ["--model", str(tiny_weights), "--quality", "2"]
    code, out, err = _run(capsys, "encode", str(photos / "a.png"), str(photos / "b.png"), str(photos / "c.jpg"),
                          "-o", str(tmp_path / "out"), *model)
    assert code == 0, err
    assert "encoded 3 file(s)" in out and "0 failed" in out and "bpp" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.ncd", "b.ncd", "c.ncd"]
    for name in ("a.png", "b.png", "c.jpg"):
        single = tmp_path / f"single-{name}.ncd"
        assert _run(capsys, "encode", str(photos / name), str(single), *model)[0] == 0
        assert (tmp_path / "out" / f"{Path(name).stem}.ncd").read_bytes() == single.read_bytes(), name

    code, out, err = _run(capsys, "decode", str(tmp_path / "out"), "-o", str(tmp_path / "decoded"),
                          "--model", str(tiny_weights), "--json")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [Path(line["output"]).name for line in lines[:-1]] == ["a.png", "b.png", "c.png"]
    assert lines[-1]["files"] == 3 and lines[-1]["failed"] == 0
    assert lines[-1]["bytes"] == sum(p.stat().st_size for p in (tmp_path / "out").iterdir())
    single = tmp_path / "single-b.png"
    assert _run(capsys, "decode", str(tmp_path / "out" / "b.ncd"), str(single), "--model", str(tiny_weights))[0] == 0
    assert Image.open(tmp_path / "decoded" / "b.png").mode == "L"
    assert np.array_equal(np.asarray(Image.open(tmp_path / "decoded" / "b.png")), np.asarray(Image.open(single)))


def test_a_folder_stands_for_the_files_its_family_encodes(tmp_path: Path, photos: Path, tiny_weights: Path, capsys):
    code, out, err = _run(capsys, "encode", str(photos), "-o", str(tmp_path / "out"), "--codec", "image-hyperprior",
                          "--model", str(tiny_weights), "--json")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.ncd", "b.ncd", "c.ncd"]  # notes.txt skipped
    assert json.loads(out.splitlines()[-1])["files"] == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _run(capsys, "encode", str(empty), "-o", str(tmp_path / "none"), "--model", str(tiny_weights))
    assert code == 2 and "no file that image-hyperprior encodes" in err and not (tmp_path / "none").exists()


def test_failures_are_reported_per_file_and_the_others_are_coded(tmp_path: Path, photos: Path, tiny_weights: Path,
                                                                 capsys):
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    code, out, err = _run(capsys, "encode", str(photos), str(tmp_path / "missing.png"), "-o", str(tmp_path / "out"),
                          "--model", str(tiny_weights))
    assert code == 2
    failures = [line for line in err.splitlines() if line.startswith("codec encode: error:")]
    assert len(failures) == 3 and "broken.png" in failures[0] and "missing.png" in failures[1]
    assert "2 of 5 file(s) failed" in failures[2]
    assert "encoded 3 file(s)" in out and "2 failed" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.ncd", "b.ncd", "c.ncd"]

    (tmp_path / "out" / "junk.ncd").write_bytes(b"NCD\x01junk")
    code, out, err = _run(capsys, "decode", str(tmp_path / "out"), "-o", str(tmp_path / "decoded"),
                          "--model", str(tiny_weights))
    assert code == 2 and "junk.ncd" in err and "decoded 3 file(s)" in out
    assert sorted(p.name for p in (tmp_path / "decoded").iterdir()) == ["a.png", "b.png", "c.png"]


def test_inputs_writing_the_same_output_are_refused_before_any_work(tmp_path: Path, photos: Path, tiny_weights: Path,
                                                                    capsys):
    Image.open(photos / "a.png").save(photos / "a.bmp")
    code, _, err = _run(capsys, "encode", str(photos), "-o", str(tmp_path / "out"), "--model", str(tiny_weights))
    assert code == 2 and "same output (a)" in err and not (tmp_path / "out").exists()
    (tmp_path / "file").write_text("x")
    code, _, err = _run(capsys, "encode", str(photos / "b.png"), "-o", str(tmp_path / "file"), "--model",
                        str(tiny_weights))
    assert code == 2 and "is a file" in err


def test_without_an_output_folder_exactly_two_paths(tmp_path: Path, photos: Path, capsys):
    for command in ("encode", "decode"):
        code, _, err = _run(capsys, command, str(photos / "a.png"), str(photos / "b.png"), str(tmp_path / "x"))
        assert code == 2 and "expected INPUT OUTPUT, or INPUT... -o DIR" in err
        assert len(err.strip().splitlines()) == 1


def test_a_folder_of_digits_is_one_input_without_o_and_many_with_it(tmp_path: Path, capsys):
    """The two-path form keeps routing a folder as one input (here: the lossless codec, one file of three
    digits); with -o the same folder gives one file per digit, decoded to PNGs."""
    folder = tmp_path / "digits"
    folder.mkdir()
    for index in range(3):
        digit = np.zeros((28, 28), np.uint8)
        digit[4:24, 8 + 4 * index:12 + 4 * index] = 255
        Image.fromarray(digit).save(folder / f"d{index}.png")
    code, out, err = _run(capsys, "encode", str(folder), str(tmp_path / "all.ncd"), "--json")
    assert code == 0, err
    assert json.loads(out)["codec"] == "lossless-pc" and json.loads(out)["images"] == 3
    code, out, err = _run(capsys, "encode", str(folder), "-o", str(tmp_path / "each"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == ["d0.ncd", "d1.ncd", "d2.ncd"]
    code, _, err = _run(capsys, "decode", str(tmp_path / "each"), str(tmp_path / "all.ncd"), "-o", str(tmp_path / "back"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == ["all", "d0.png", "d1.png", "d2.png"]
    for index in range(3):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "back" / f"d{index}.png")),
                              np.asarray(Image.open(folder / f"d{index}.png")))
    assert sorted(p.name for p in (tmp_path / "back" / "all").iterdir()) == ["d0.png", "d1.png", "d2.png"]
