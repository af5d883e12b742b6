"""The `codec` command line: help, info, models, encode/decode, and one-line errors on bad input."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from neuralcodec.cli import main


def _run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_the_subcommands():
    result = subprocess.run([sys.executable, "-m", "neuralcodec.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("encode", "decode", "info", "models", "train"):
        assert command in result.stdout


def test_encode_info_decode(tmp_path: Path, photo_png: Path, tiny_weights: Path, capsys):
    ncd, out = tmp_path / "p.ncd", tmp_path / "p.png"
    code, stdout, _ = _run(capsys, "encode", str(photo_png), str(ncd), "--model", str(tiny_weights), "--verify", "--json")
    assert code == 0
    stats = json.loads(stdout)
    assert stats["bytes"] == ncd.stat().st_size and stats["bpp"] > 0 and "psnr_rgb" in stats
    code, stdout, _ = _run(capsys, "info", str(ncd), "--json")
    info = json.loads(stdout)
    assert code == 0 and info["codec"] == "image-hyperprior" and info["model_id"] == "tiny-test"
    assert info["metadata"]["width"] == 136 and info["metadata"]["height"] == 96
    code, _, _ = _run(capsys, "decode", str(ncd), str(out), "--model", str(tiny_weights))
    assert code == 0 and out.stat().st_size > 0


def test_models_lists_registry(capsys):
    code, stdout, _ = _run(capsys, "models", "--json")
    assert code == 0
    assert isinstance(json.loads(stdout), list)


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\nnot really", b"NCD\x09future", b"NCD\x01\x05abc"])
def test_decode_bad_files_one_line_error(tmp_path: Path, capsys, content: bytes):
    bad, out = tmp_path / "bad.ncd", tmp_path / "out.png"
    bad.write_bytes(content)
    code, _, err = _run(capsys, "decode", str(bad), str(out))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "error:" in err
    assert not out.exists()


def test_decode_fuzzed_files(tmp_path: Path, photo_png: Path, tiny_weights: Path, capsys):
    ncd = tmp_path / "p.ncd"
    assert main(["encode", str(photo_png), str(ncd), "--model", str(tiny_weights)]) == 0
    capsys.readouterr()
    data = ncd.read_bytes()
    rng = random.Random(0)
    variants = [data[:cut] for cut in range(0, len(data), max(1, len(data) // 25))]
    for _ in range(25):
        flipped = bytearray(data)
        position = rng.randrange(len(flipped))
        flipped[position] ^= 1 << rng.randrange(8)
        variants.append(bytes(flipped))
    for index, variant in enumerate(variants):
        bad, out = tmp_path / f"bad{index}.ncd", tmp_path / f"out{index}.png"
        bad.write_bytes(variant)
        code, _, err = _run(capsys, "decode", str(bad), str(out), "--model", str(tiny_weights))
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert not out.exists()


def test_encode_errors_are_one_line(tmp_path: Path, capsys):
    missing = tmp_path / "missing.png"
    code, _, err = _run(capsys, "encode", str(missing), str(tmp_path / "x.ncd"))
    assert code == 2 and "not found" in err and len(err.strip().splitlines()) == 1


def test_unknown_model(tmp_path: Path, photo_png: Path, capsys):
    code, _, err = _run(capsys, "encode", str(photo_png), str(tmp_path / "x.ncd"), "--model", "no-such-model")
    assert code == 2 and "no-such-model" in err


def test_a_file_of_a_retired_model_says_how_to_decode_it(tmp_path: Path, photo_png: Path, tiny_weights: Path,
                                                         capsys, monkeypatch: pytest.MonkeyPatch):
    from neuralcodec import pretrained

    ncd, out = tmp_path / "p.ncd", tmp_path / "p.png"
    assert main(["encode", str(photo_png), str(ncd), "--model", str(tiny_weights)]) == 0
    retired = {"tiny-test": {"file": "tiny-test.safetensors", "sha256": "0" * 64, "replaced_by": "hyperprior-x",
                             "last_commit": "abc1234"}}
    monkeypatch.setattr(pretrained, "retired_models", lambda: retired)
    capsys.readouterr()
    code, _, err = _run(capsys, "decode", str(ncd), str(out))
    assert code == 2 and len(err.strip().splitlines()) == 1 and not out.exists()
    assert "no longer shipped" in err and "hyperprior-x" in err
    assert "git show abc1234:neuralcodec/pretrained/tiny-test.safetensors" in err
    assert main(["decode", str(ncd), str(out), "--model", str(tiny_weights)]) == 0  # the advice works


def test_retired_models_are_gone_and_their_weights_are_in_the_named_commit():
    from neuralcodec.pretrained import list_models, retired_models

    shipped = {m.model_id for m in list_models()}
    repository = Path(__file__).resolve().parents[1]
    for model_id, entry in retired_models().items():
        assert model_id not in shipped and entry["replaced_by"] in shipped
        blob = f"{entry['last_commit']}:neuralcodec/pretrained/{entry['file']}"
        found = subprocess.run(["git", "-C", str(repository), "cat-file", "-e", blob], capture_output=True)
        if found.returncode != 0:
            continue  # not a full clone of the repository (an installed package, a shallow clone)
        data = subprocess.run(["git", "-C", str(repository), "show", blob], capture_output=True, check=True).stdout
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
