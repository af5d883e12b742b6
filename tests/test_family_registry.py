"""Adding a codec family is one Family record in the registry: a dummy family (zlib over a file's bytes)
registered in a test encodes and decodes through the real CLI, with its own flag and routing."""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from neuralcodec.cli import main
from neuralcodec.codecs import registry
from neuralcodec.codecs.base import SNIFF_CONTENT, SNIFF_NO, EncodeOptions, EncodeResult, Family, cli_option
from neuralcodec.container import Payload
from neuralcodec.fileio import atomic_write_bytes
from neuralcodec.limits import Limits
from neuralcodec.pretrained import LoadedWeights, save_weights


@dataclass
class ZlibOptions(EncodeOptions):
    zlib_level: int = cli_option(6, "--zlib-level", type=int, help="dummy family: zlib compression level")


class ZlibCodec:
    """Codes a file's bytes with zlib; its 'weights' hold nothing but a config."""

    name: ClassVar[str] = "dummy-zlib"

    def __init__(self, weights: LoadedWeights) -> None:
        self.weights = weights

    @classmethod
    def from_weights(cls, weights: LoadedWeights, device: str = "cpu") -> "ZlibCodec":
        return cls(weights)

    def encode_file(self, source: Path, options: ZlibOptions) -> EncodeResult:
        started = time.perf_counter()
        data = source.read_bytes()
        payload = Payload(self.name, self.weights.model_id, self.weights.weights_hash, {"level": options.zlib_level},
                          {"data": zlib.compress(data, options.zlib_level)})
        return EncodeResult(payload, {"input_bytes": len(data), "seconds": time.perf_counter() - started}, pixels=0)

    def decode_file(self, payload: Payload, target: Path, limits: Limits) -> dict:
        data = zlib.decompress(payload.sections["data"])
        atomic_write_bytes(target, data)
        return {"bytes": len(data)}


def sniff(path: Path) -> int:
    return SNIFF_CONTENT if path.suffix == ".dummy" else SNIFF_NO


DUMMY = Family(name=ZlibCodec.name, summary="test family", sniff=sniff, options=ZlibOptions,
               load_codec_class=lambda: ZlibCodec, check_header=lambda payload, limits: None,
               decoded_suffix=lambda payload: ".dummy")


@pytest.fixture
def dummy_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(registry, "FAMILIES", [*registry.FAMILIES, DUMMY])
    path = tmp_path / "dummy.safetensors"
    save_weights(path, {"nothing": torch.zeros(1)}, codec=ZlibCodec.name, model_id="dummy", config={})
    return path


def test_a_registered_family_encodes_and_decodes_through_the_cli(tmp_path: Path, dummy_weights: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    source = tmp_path / "text.dummy"
    source.write_bytes(b"neuralcodec " * 500)
    assert main(["encode", str(source), str(tmp_path / "a.ncd"), "--model", str(dummy_weights),
                 "--zlib-level", "1", "--json"]) == 0
    assert main(["encode", str(source), str(tmp_path / "b.ncd"), "--model", str(dummy_weights)]) == 0
    assert main(["decode", str(tmp_path / "a.ncd"), str(tmp_path / "back.dummy"), "--model", str(dummy_weights)]) == 0
    assert (tmp_path / "back.dummy").read_bytes() == source.read_bytes()
    assert main(["decode", str(tmp_path / "a.ncd"), "-o", str(tmp_path / "many"), "--model", str(dummy_weights)]) == 0
    assert (tmp_path / "many" / "a.dummy").read_bytes() == source.read_bytes()  # the family's decoded_suffix
    assert (tmp_path / "a.ncd").stat().st_size != (tmp_path / "b.ncd").stat().st_size  # the family's own flag
    assert registry.family_for_input(source) is DUMMY
    capsys.readouterr()
    assert main(["encode", str(source), str(tmp_path / "c.ncd"), "--model", str(dummy_weights), "--gop", "3"]) == 2
    assert "gop does not apply to dummy-zlib" in capsys.readouterr().err


def test_a_file_whose_model_is_not_shipped_needs_its_weights(tmp_path: Path, dummy_weights: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    source = tmp_path / "text.dummy"
    source.write_bytes(b"x" * 100)
    assert main(["encode", str(source), str(tmp_path / "a.ncd"), "--model", str(dummy_weights)]) == 0
    capsys.readouterr()
    assert main(["decode", str(tmp_path / "a.ncd"), str(tmp_path / "back.dummy")]) == 2
    assert "pass them with --model" in capsys.readouterr().err
    assert not (tmp_path / "back.dummy").exists()
