"""The findings of the hostile-input review (issue #21), one test each: crafted files with valid checksums,
decompression bombs, unsafe names, output errors. Seeds are the golden files (tests/data/golden)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from fuzzing import GOLDEN, _png_header_only, _tiny_jpeg
from neuralcodec import api, container, fileio
from neuralcodec.cli import main as cli_main
from neuralcodec.codecs.image import compact as image_compact
from neuralcodec.errors import CorruptFileError, EntropyCodingError, InputError, LimitExceededError, NeuralCodecError
from neuralcodec.limits import Limits
from neuralcodec.pretrained import compact_models

REPOSITORY = Path(__file__).resolve().parents[1]


def _payload(name: str) -> container.Payload:
    payload = container.read((GOLDEN / name).read_bytes(), compact_models=compact_models())
    return image_compact.unpack(payload) if payload.codec == "image-hyperprior" else payload


def _crafted(tmp_path: Path, name: str, edit) -> Path:
    """Golden file ``name`` with ``edit(payload)`` applied, written back with a valid checksum."""
    payload = _payload(name)
    edit(payload)
    path = tmp_path / f"crafted-{name}"
    path.write_bytes(container.write(payload))
    return path


def _run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPOSITORY))
    return subprocess.run([sys.executable, "-m", "neuralcodec.cli", *args], input=stdin, capture_output=True, env=env,
                          timeout=300)


# ------------------------------------------------------------------ 1. decompression bombs, decode


def _declare_size(height: int, width: int):
    def edit(payload: container.Payload) -> None:
        payload.metadata.update(height=height, width=width)
    return edit


@pytest.mark.parametrize("name", ["vr9c-q1.ncd", "vr9c-rgba-q5.ncd", "faces-mse-q4.ncd", "video-st-q5.ncd"])
def test_a_20000x20000_header_fails_before_any_model_loads(tmp_path: Path, name: str) -> None:
    path = _crafted(tmp_path, name, _declare_size(20000, 20000))
    code = ("import sys\nfrom pathlib import Path\nfrom neuralcodec import api\nfrom neuralcodec.errors import LimitExceededError\n"
            f"try:\n    api.decode_path(Path({str(path)!r}), Path({str(tmp_path / 'out.png')!r}))\n"
            "except LimitExceededError as e:\n    print(e)\nprint('torch' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=str(REPOSITORY)))
    message, torch_loaded = result.stdout.strip().splitlines()
    assert "400000000, over the limit of 64000000 pixels" in message and "--max-pixels" in message
    assert torch_loaded == "False"
    assert not (tmp_path / "out.png").exists()


def test_the_limit_can_be_lowered_and_raised(tmp_path: Path) -> None:
    golden = GOLDEN / "vr9c-q1.ncd"
    with pytest.raises(LimitExceededError, match="over the limit of 5000 pixels"):
        api.decode_path(golden, tmp_path / "a.png", limits=Limits(max_pixels=5000))
    assert cli_main(["decode", str(golden), str(tmp_path / "b.png"), "--max-pixels", "7313"]) == 0
    assert cli_main(["decode", str(golden), str(tmp_path / "c.png"), "--max-pixels", "7312"]) == 2


def test_a_video_frame_count_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = _crafted(tmp_path, "video-st-q5.ncd", lambda p: p.metadata.update(frames=70000))
    with pytest.raises(LimitExceededError, match="frame count is 70000, over the limit of 65536 frames"):
        api.decode_path(path, tmp_path / "out.y4m")


# ------------------------------------------------------------------ 2. decompression bombs, encode


def test_an_8200x8200_png_is_refused_from_its_header(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(8200, 8200, mode=2))
    with pytest.raises(LimitExceededError, match="8200x8200 is 67240000, over the limit of 64000000 pixels"):
        api.encode_path(bomb, tmp_path / "bomb.ncd")
    assert not (tmp_path / "bomb.ncd").exists()


def test_encode_takes_the_max_pixels_flag(tmp_path: Path) -> None:
    assert cli_main(["encode", str(GOLDEN / "rgb-103x71.png"), str(tmp_path / "x.ncd"), "--max-pixels", "7000"]) == 2
    assert not (tmp_path / "x.ncd").exists()


# ------------------------------------------------------------------ 3. the alpha section


@pytest.mark.parametrize("alpha, message", [
    (_png_header_only(100000, 100000), "oversized image"),
    (_png_header_only(4000, 3000), "4000x3000 L PNG, expected 61x45"),
    (_tiny_jpeg(), "not a PNG"),
    (b"", "not a PNG"),
], ids=["png-bomb", "png-wrong-size", "jpeg", "empty"])
def test_the_alpha_section_must_be_a_png_of_the_image_size(tmp_path: Path, alpha: bytes, message: str) -> None:
    path = _crafted(tmp_path, "vr9c-rgba-q5.ncd", lambda p: p.sections.update(alpha=alpha))
    with pytest.raises(CorruptFileError, match=message):
        api.decode_path(path, tmp_path / "out.png")
    assert not (tmp_path / "out.png").exists()


# ------------------------------------------------------------------ 4. lossless image counts


def test_a_lossless_count_over_the_pixel_limit_fails_before_decoding(tmp_path: Path) -> None:
    path = _crafted(tmp_path, "hclt-mnist-folder3.ncd", lambda p: p.metadata.update(count=1_000_000))
    with pytest.raises(LimitExceededError, match="1000000 images of 784 pixels"):
        api.decode_path(path, tmp_path / "out")


def test_an_empty_lossless_stream_is_the_blank_digit() -> None:
    """Why the declared count cannot be checked against the stream's length: the ANS coder starts from a
    zero state that a run of most-probable values leaves at zero, so a hundred blank digits cost no bytes at all
    (their ~54 bits of information stay in the coder's implicit zero words). An empty stream is therefore a
    valid file of blank digits, and the count is bounded by the pixel limit instead."""
    from neuralcodec.codecs.registry import load_codec

    codec = load_codec("hclt-mnist")
    blanks = np.zeros((100, 28, 28), dtype=np.uint8)
    stream, ideal_bits = codec.compress(blanks)
    assert stream == b"" and ideal_bits > 100 * 50
    assert np.array_equal(codec.decompress(b"", 100), blanks)


def test_a_crafted_lossless_count_costs_chunks_of_data_not_of_the_count(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The fuzzer's slowest finding: 3 Fashion-MNIST images declared as 65,536. Decoding reads the stream in
    the first chunk; the next chunk reads nothing and ends in the same coder state, so the chunks after it
    are copies: 3 chunk passes instead of 16. Images alike share their pmfs, so such chunks are cheap too."""
    from neuralcodec.codecs.lossless import codec as lossless_codec

    passes: list[int] = []
    real_pass = lossless_codec.code_pixels
    monkeypatch.setattr(lossless_codec, "code_pixels", lambda tables, batch, symbols: (passes.append(batch),
                                                                                       real_pass(tables, batch, symbols)))
    path = _crafted(tmp_path, "hclt-fashion-idx3.ncd", lambda p: p.metadata.update(count=65_536 - 100))
    with pytest.raises(EntropyCodingError, match="trailing content"):
        api.decode_path(path, tmp_path / "out-ubyte")
    assert passes == [4096, 4096, 4096 - 100]


# ------------------------------------------------------------------ 5. lossless names


def _with_names(names: list[str]):
    def edit(payload: container.Payload) -> None:
        payload.sections["names"] = zlib.compress("\n".join(names).encode("utf-8"))
    return edit


@pytest.mark.parametrize("names, message", [
    (["a\x00b.png", "b.png", "c.png"], "not a plain, printable"),
    (["x" * 300 + ".png", "b.png", "c.png"], "a name of 304 bytes"),
    (["same.png", "same.png", "SAME.png"], "appears twice"),
    (["a.jpg", "b.png", "c.png"], "lossless image suffix"),
    (["../a.png", "b.png", "c.png"], "not a plain"),
    ([".hidden.png", "b.png", "c.png"], "not a plain"),
    (["a.png", "b.png"], "names 2 images but holds 3"),
])
def test_unsafe_lossless_names_are_refused(tmp_path: Path, names: list[str], message: str) -> None:
    path = _crafted(tmp_path, "hclt-mnist-folder3.ncd", _with_names(names))
    with pytest.raises(CorruptFileError, match=message):
        api.decode_path(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_folder_whose_names_cannot_be_kept_is_refused_at_encode(tmp_path: Path) -> None:
    folder = tmp_path / "digits"
    folder.mkdir()
    for name in ("a.png", "A.PNG"):
        (folder / name).write_bytes((GOLDEN / "digit-28x28.png").read_bytes())
    with pytest.raises(InputError, match="appears twice"):
        api.encode_path(folder, tmp_path / "digits.ncd", codec="lossless-pc")


# ------------------------------------------------------------------ 6. the model id is data


def test_a_model_id_that_is_a_path_is_never_opened(tmp_path: Path) -> None:
    path = _crafted(tmp_path, "vr9c-q1.ncd", lambda p: setattr(p, "model_id", str(GOLDEN / "faces-mse-q4.ncd")))
    with pytest.raises(NeuralCodecError, match="pass them with --model"):
        api.decode_path(path, tmp_path / "out.png")


# ------------------------------------------------------------------ 7. output errors and standard streams


def test_a_missing_output_folder_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        api.decode_path(GOLDEN / "video-st-q5.ncd", tmp_path / "nodir" / "x.y4m")
    with pytest.raises(InputError, match="does not exist"):
        api.encode_path(GOLDEN / "rgb-103x71.png", tmp_path / "nodir" / "x.ncd")


def test_a_write_refused_by_the_system_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(fileio, "_fsync_file", refuse)
    with pytest.raises(InputError, match="cannot write .*Permission denied"):
        fileio.atomic_write_bytes(tmp_path / "x.bin", b"data")
    assert list(tmp_path.iterdir()) == []


def test_decoding_video_frames_never_replaces_an_existing_folder(tmp_path: Path) -> None:
    keep = tmp_path / "photos"
    keep.mkdir()
    (keep / "precious.jpg").write_bytes(b"x")
    with pytest.raises(InputError, match="existing folder"):
        api.decode_path(GOLDEN / "video-st-q5.ncd", keep)
    assert (keep / "precious.jpg").read_bytes() == b"x"


def test_dash_is_standard_output_and_input_on_the_ncd_side(tmp_path: Path) -> None:
    encoded = _run_cli("encode", str(GOLDEN / "rgb-103x71.png"), "-", "--quality", "1", "--model", "hyperprior-vr9c-n96")
    assert encoded.returncode == 0 and encoded.stdout == (GOLDEN / "vr9c-q1.ncd").read_bytes()
    assert b"bpp=" in encoded.stderr
    decoded = _run_cli("decode", "-", str(tmp_path / "out.png"), stdin=encoded.stdout)
    assert decoded.returncode == 0 and (tmp_path / "out.png").is_file()
    refused = _run_cli("decode", str(GOLDEN / "vr9c-q1.ncd"), "-")
    assert refused.returncode == 2 and b"'-' (standard output) is not supported" in refused.stderr
    assert not Path("-").exists()


@pytest.mark.parametrize("device, message", [("bogus", "unknown device"), ("cuda:7", "cuda")])
def test_bad_devices_are_input_errors(tmp_path: Path, device: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        api.decode_path(GOLDEN / "vr9c-q1.ncd", tmp_path / "out.png", device=device)


def test_a_closed_pipe_ends_quietly() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPOSITORY))
    shell = f"{sys.executable} -m neuralcodec.cli models --json | true; echo ${{PIPESTATUS[0]}}"
    result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, env=env, timeout=120)
    assert result.stdout.strip() in ("0", "141") and "internal error" not in result.stderr


# ------------------------------------------------------------------ found by the fuzz suite


@pytest.mark.parametrize("value", [1.5, [1, 2], "x", True, -1])
def test_a_malformed_index_check_is_a_corrupt_file(tmp_path: Path, value: object) -> None:
    path = _crafted(tmp_path, "vr9c-q1.ncd", lambda p: p.metadata.update(index_crc_mask=value))
    with pytest.raises(CorruptFileError, match="invalid index_crc_mask"):
        api.decode_path(path, tmp_path / "out.png")


def test_running_out_of_memory_is_a_limit_not_an_internal_error() -> None:
    with pytest.raises(LimitExceededError, match=r"out of memory while decoding x \(can't allocate memory: you tried to allocate 8 bytes\)"):
        with api.out_of_memory_as_limit("decoding x"):
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
                               "memory: you tried to allocate 8 bytes. Error code 12 (Cannot allocate memory)")
    with pytest.raises(LimitExceededError, match="out of memory while encoding y"):
        with api.out_of_memory_as_limit("encoding y"):
            raise MemoryError()
    with pytest.raises(RuntimeError, match="something else"):
        with api.out_of_memory_as_limit("decoding z"):
            raise RuntimeError("something else")
