"""The `codec` command line: help, info, models, encode/decode, and one-line errors on bad input."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from neuralcodec.cli import main


def _run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("module", ["neuralcodec", "neuralcodec.cli"])
def test_help_lists_the_subcommands(module: str):
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=True)
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


@pytest.fixture
def tiny_retired(tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """``tiny-test`` registered as a retired model (its weights nowhere the package looks, NEURALCODEC_MODELS unset)."""
    from neuralcodec import pretrained

    entry = {"codec": "image-hyperprior", "file": "tiny-test.safetensors",
             "sha256": pretrained.sha256_of_file(tiny_weights), "retired": {"replaced_by": "hyperprior-x", "why": "a test"}}
    registry = tmp_path / "retired.json"
    registry.write_text(json.dumps({"tiny-test": entry}))
    monkeypatch.setattr(pretrained, "RETIRED_PATH", registry)
    monkeypatch.setattr(pretrained, "SOURCE_RETIRED_DIR", tmp_path / "no-checkout")
    monkeypatch.delenv(pretrained.MODELS_ENV, raising=False)
    pretrained._retired.cache_clear()
    yield entry
    pretrained._retired.cache_clear()


def test_a_file_of_a_retired_model_says_how_to_get_its_weights(tmp_path: Path, photo_png: Path, tiny_weights: Path,
                                                               tiny_retired: dict, capsys,
                                                               monkeypatch: pytest.MonkeyPatch):
    ncd, out = tmp_path / "p.ncd", tmp_path / "p.png"
    assert main(["encode", str(photo_png), str(ncd), "--model", str(tiny_weights)]) == 0
    capsys.readouterr()
    code, _, err = _run(capsys, "decode", str(ncd), str(out))
    assert code == 2 and len(err.strip().splitlines()) == 1 and not out.exists()
    assert "'tiny-test' is retired (replaced by 'hyperprior-x')" in err
    assert "models-retired/tiny-test.safetensors" in err and "NEURALCODEC_MODELS" in err and "--model" in err
    folder = tmp_path / "my-models"
    folder.mkdir()
    (folder / "tiny-test.safetensors").write_bytes(tiny_weights.read_bytes())
    monkeypatch.setenv("NEURALCODEC_MODELS", f"{tmp_path / 'empty'}{os.pathsep}{folder}")
    assert main(["decode", str(ncd), str(out)]) == 0 and out.exists()  # found in the second folder
    capsys.readouterr()
    code, stdout, _ = _run(capsys, "models", "--retired", "--json")
    assert code == 0 and json.loads(stdout) == [{
        "id": "tiny-test", "codec": "image-hyperprior", "replaced_by": "hyperprior-x", "why": "a test",
        "file": "tiny-test.safetensors", "sha256": tiny_retired["sha256"],
        "found": str(folder / "tiny-test.safetensors"),
        "how_to_get": "take models-retired/tiny-test.safetensors from the neuralcodec source repository"}]


def test_retired_weights_are_checked_against_the_recorded_sha256(tmp_path: Path, photo_png: Path, tiny_weights: Path,
                                                                 tiny_retired: dict, capsys,
                                                                 monkeypatch: pytest.MonkeyPatch):
    from neuralcodec.pretrained import load_weights_file, save_weights

    ncd, out = tmp_path / "p.ncd", tmp_path / "p.png"
    assert main(["encode", str(photo_png), str(ncd), "--model", str(tiny_weights)]) == 0
    folder = tmp_path / "my-models"
    folder.mkdir()
    weights = load_weights_file(tiny_weights)  # the same model with one weight changed, under the same name
    tensors = {key: value + 1 if index == 0 else value for index, (key, value) in enumerate(weights.tensors.items())}
    save_weights(folder / "tiny-test.safetensors", tensors, weights.codec, weights.model_id, weights.config)
    monkeypatch.setenv("NEURALCODEC_MODELS", str(folder))
    capsys.readouterr()
    code, _, err = _run(capsys, "decode", str(ncd), str(out))
    assert code == 2 and "the registry expects" in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_models_retired_says_where_weights_of_the_history_are(tiny_retired: dict, tmp_path: Path, capsys,
                                                              monkeypatch: pytest.MonkeyPatch):
    from neuralcodec import pretrained

    tiny_retired["retired"]["last_commit"] = "abc1234"
    (tmp_path / "retired.json").write_text(json.dumps({"tiny-test": tiny_retired}))
    pretrained._retired.cache_clear()
    code, stdout, _ = _run(capsys, "models", "--retired")
    assert code == 0 and "tiny-test" in stdout and "replaced by hyperprior-x; not installed" in stdout
    assert "git show abc1234:neuralcodec/pretrained/tiny-test.safetensors > tiny-test.safetensors" in stdout


def test_retired_models_are_not_in_the_package_and_their_weights_are_kept():
    from neuralcodec.pretrained import PRETRAINED_DIR, SOURCE_RETIRED_DIR, list_models, retired_models

    shipped = {m.model_id for m in list_models()}
    repository = Path(__file__).resolve().parents[1]
    assert retired_models()
    for info in retired_models():
        assert info.model_id not in shipped and info.retired.replaced_by in shipped
        assert not (PRETRAINED_DIR / info.path.name).exists()  # package data holds only shipped weights
        if info.retired.last_commit is None:  # kept in models-retired/ of the repository
            assert info.path == SOURCE_RETIRED_DIR / info.path.name
            assert hashlib.sha256(info.path.read_bytes()).hexdigest() == info.sha256
            continue
        blob = f"{info.retired.last_commit}:neuralcodec/pretrained/{info.path.name}"
        found = subprocess.run(["git", "-C", str(repository), "cat-file", "-e", blob], capture_output=True)
        if found.returncode != 0:
            continue  # not a full clone of the repository (a shallow clone)
        data = subprocess.run(["git", "-C", str(repository), "show", blob], capture_output=True, check=True).stdout
        assert hashlib.sha256(data).hexdigest() == info.sha256


def test_compact_codes_stay_unique_across_shipped_and_retired_models():
    from neuralcodec.pretrained import compact_models, list_models, retired_models

    codes = [m.compact_code for m in (*list_models(), *retired_models()) if m.compact_code is not None]
    assert len(codes) == len(set(codes)) == len(compact_models())
