"""Golden files: users' .ncd files must keep decoding to the same pixels, and the encoder must keep writing
the same bytes, whatever the package's internals become.

Every case of ``tests/data/golden/manifest.json`` (made by ``tests/golden_files.py``; see its docstring
for when and how to regenerate) is checked through the public API only (``neuralcodec.encode_file``,
``neuralcodec.decode_file``, ``neuralcodec.list_models``), with Pillow/numpy reading what was decoded:

(a) encoding the committed input with the recorded arguments writes exactly the committed bytes, and
    ``verify=True`` (the decoder reproduces the encoder's reconstruction) passes;
(b) decoding the committed .ncd file gives exactly the pinned pixels (hash of the uint8 array, shape
    included; for video also the pinned Y4M samples);
(c) what was decoded agrees with the encoder's reconstruction as far as that is cheap to see: lossless
    files give back their input exactly (names too), alpha comes back exactly, and the PSNR of the
    decoded colour equals the PSNR the encoder reported for its own reconstruction.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

import neuralcodec

_spec = importlib.util.spec_from_file_location("golden_files", Path(__file__).with_name("golden_files.py"))
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)

MANIFEST = json.loads(golden.MANIFEST.read_text())
CASES = MANIFEST["cases"]
IDS = [case["name"] for case in CASES]
NOT_CODECS = {"classifier", "face-embedder"}  # perception models: nothing to encode


def _machine_note() -> str:
    here, made = golden.machine(), MANIFEST["machine"]
    keys = ("cpu", "avx512f", "avx512_bf16", "torch_cpu_capability", "torch")
    diff = {k: (made.get(k), here.get(k)) for k in keys if made.get(k) != here.get(k)}
    return f" (golden files made on another machine: {diff})" if diff else ""


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def test_every_shipped_codec_model_has_a_golden_file() -> None:
    shipped = {m.model_id for m in neuralcodec.list_models() if m.codec not in NOT_CODECS}
    covered = {case["model"] for case in CASES if case.get("encoder_pinned", True)}
    assert shipped - covered == set(), "add golden cases for new models (tests/golden_files.py, CASES)"


def test_golden_folder_stays_small() -> None:
    total = sum(p.stat().st_size for p in golden.GOLDEN.rglob("*") if p.is_file())
    assert total < 300_000


@pytest.mark.parametrize("case", [c for c in CASES if c.get("encoder_pinned", True)],
                         ids=[c["name"] for c in CASES if c.get("encoder_pinned", True)])
def test_encoder_writes_the_committed_bytes(case: dict, tmp_path: Path) -> None:
    target = tmp_path / case["ncd"]
    stats = golden.encode_case(case, target, verify=True)  # verify: raises unless decoding reproduces the encoder
    committed = (golden.GOLDEN / case["ncd"]).read_bytes()
    written = target.read_bytes()
    if written != committed:
        first = next((i for i, (a, b) in enumerate(zip(written, committed)) if a != b), min(len(written), len(committed)))
        pytest.fail(f"{case['encode_call']} wrote {len(written)} bytes, the golden file has {len(committed)}; "
                    f"first difference at byte {first}{_machine_note()}")
    assert stats["bytes"] == len(committed)
    recorded = case["encoder_stats"]
    for key in ("psnr_rgb", "verified", "frames", "gop", "extra_i_frames", "images"):
        if key in recorded:
            assert stats.get(key) == recorded[key], key


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_decoder_gives_the_committed_pixels(case: dict, tmp_path: Path) -> None:
    ncd = golden.GOLDEN / case["ncd"]
    assert golden.file_sha256(ncd) == case["ncd_sha256"], "the committed golden file itself changed"
    decoded = golden.decode_case(ncd, case["decoded"], tmp_path)
    pixels = decoded["pixels"]
    assert list(pixels.shape) == case["decoded_shape"]
    assert decoded["pixel_sha256"] == golden.expected_pixel_sha256(case), f"decoded pixels changed{_machine_note()}"
    if "y4m_sha256" in case:
        assert decoded["y4m_header"] == case["y4m_header"]
        assert decoded["y4m_sha256"] == case["y4m_sha256"], "the decoded Y4M samples changed"
    if "decoded_mode" in case:
        assert decoded["mode"] == case["decoded_mode"]
    if "decoded_names" in case:
        assert decoded["names"] == case["decoded_names"]

    # (c) agreement with the input / the encoder's reconstruction
    source = golden.input_pixels(golden.GOLDEN / case["input"])
    if case["model"].startswith(("hclt-", "lossless-image-")):
        assert np.array_equal(pixels.reshape(source.shape), source), "lossless decoding differs from the input"
        return
    psnr = case["encoder_stats"].get("psnr_rgb")
    if case["decoded"] == "image" and pixels.ndim == 3:  # RGB or RGBA (grey: the encoder measures RGB, not L)
        assert source.shape == pixels.shape
        if pixels.shape[-1] == 4:
            assert np.array_equal(pixels[..., 3], source[..., 3]), "alpha is not lossless"
        assert abs(_psnr(pixels[..., :3], source[..., :3]) - psnr) <= 6e-4, \
            "decoded pixels are not the encoder's reconstruction (PSNR differs from the encoder's)"
