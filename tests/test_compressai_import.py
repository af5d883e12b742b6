"""`codec import-compressai`: CompressAI hyperprior checkpoints become neuralcodec models whose forward pass
equals CompressAI's, whose files are as small as CompressAI's own bitstreams and decode bit-exactly.
Skipped when compressai (the `test` extra) is not installed; the import itself never needs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec import container
from neuralcodec.cli import main
from neuralcodec.codecs.registry import load_codec
from neuralcodec.eval.runner import evaluate
from neuralcodec.pretrained import sha256_of_file

models = pytest.importorskip("compressai.models")
ARCHS = {"bmshj2018-hyperprior": models.ScaleHyperprior, "mbt2018-mean": models.MeanScaleHyperprior}
N, M = 64, 96


def _compressai_model(arch: str) -> torch.nn.Module:
    """A randomly initialised CompressAI model whose latents are not all rounded to zero: the last analysis
    layer is scaled up (random ones give latents of std 0.07) and the predicted scales start near 2."""
    torch.manual_seed(0)
    net = ARCHS[arch](N=N, M=M).eval()
    with torch.no_grad():
        net.g_a[6].weight.mul_(10)
        net.g_a[6].bias.mul_(10)
        net.h_s[4].bias[:M].add_(2)
    net.update(force=True)
    return net


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """256x384 natural photo (no padding, so CompressAI codes exactly the same pixels)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:256, :384])


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255


@pytest.fixture(scope="module", params=sorted(ARCHS))
def imported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, torch.nn.Module, Path]:
    """(arch, the CompressAI model, its import through the CLI from an examples/train.py-style checkpoint)."""
    arch = request.param
    net = _compressai_model(arch)
    folder = tmp_path_factory.mktemp(arch)
    checkpoint = folder / "checkpoint.pth.tar"
    torch.save({"epoch": 3, "state_dict": net.state_dict(), "loss": 1.5,
                "optimizer": torch.optim.Adam(net.parameters()).state_dict()}, checkpoint)
    weights = folder / f"{arch}.safetensors"
    assert main(["import-compressai", str(checkpoint), "--arch", arch, "--out", str(weights)]) == 0
    return arch, net, weights


def test_forward_equals_compressai(imported, image: np.ndarray):
    arch, net, weights = imported
    model = load_codec(str(weights)).model
    assert (model.config.n, model.config.m, model.config.levels) == (N, M, 1)
    x = _tensor(image)
    with torch.no_grad():
        expected, got = net(x), model(x, 0)
    assert torch.allclose(got["x_hat"], expected["x_hat"], rtol=0, atol=1e-6)
    for name in ("y", "z"):
        assert torch.allclose(got["likelihoods"][name], expected["likelihoods"][name], rtol=1e-5, atol=1e-7)


def test_files_are_as_small_as_compressai_bitstreams_and_decode_bit_exactly(imported, image: np.ndarray,
                                                                             tmp_path: Path, capsys):
    arch, net, weights = imported
    png, ncd, decoded = tmp_path / "photo.png", tmp_path / "photo.ncd", tmp_path / "decoded.png"
    Image.fromarray(image).save(png)
    assert main(["encode", str(png), str(ncd), "--model", str(weights), "--verify", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    x = _tensor(image)
    with torch.no_grad():
        coded = net.compress(x)
        reference = net.decompress(coded["strings"], coded["shape"])["x_hat"]
    reference_bytes = sum(len(strings[0]) for strings in coded["strings"])
    assert reference_bytes > 10_000 and stats["psnr_rgb"] > 0
    assert abs(ncd.stat().st_size / reference_bytes - 1) < 0.02

    assert main(["decode", str(ncd), str(decoded), "--model", str(weights)]) == 0
    codec = load_codec(str(weights))
    coding = codec.compress(x)
    payload = container.read_file(ncd)
    assert payload.sections["bits"] == coding.payload.sections["bits"]
    assert torch.equal(codec.decompress(payload), coding.x_hat)
    expected_png = (coding.x_hat[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert np.array_equal(np.asarray(Image.open(decoded)), expected_png)
    # Against CompressAI's own decoder: the same latents up to float rounding of the analysis (rarely, an
    # element rounded the other way), and for mbt2018-mean to the means, which files snap to 1/256.
    difference = (coding.x_hat - reference).abs()
    assert 10 * torch.log10(1 / difference.square().mean()) > 55
    if arch == "bmshj2018-hyperprior":
        assert (difference > 1e-5).float().mean() < 0.05


def test_a_single_rate_model_takes_quality_1_only(imported, tmp_path: Path, capsys):
    _, _, weights = imported
    png = tmp_path / "small.png"
    Image.fromarray(np.full((40, 56, 3), 120, np.uint8)).save(png)
    assert main(["encode", str(png), str(tmp_path / "a.ncd"), "--model", str(weights), "--quality", "1"]) == 0
    capsys.readouterr()
    assert main(["encode", str(png), str(tmp_path / "b.ncd"), "--model", str(weights), "--quality", "2"]) == 2
    error = capsys.readouterr().err
    assert "quality must be 1 (it has a single rate)" in error and len(error.strip().splitlines()) == 1


def test_codec_eval_sweeps_the_imported_model(imported, image: np.ndarray, tmp_path: Path):
    arch, _, weights = imported
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(image[:64, :96]).save(folder / "a.png")
    result = evaluate(["jpeg", str(weights)], folder, tmp_path / "results", qualities={"jpeg": [50, 90]},
                      progress=False)
    point, = result["curves"][arch]
    assert point["bpp"] > 0 and point["psnr"] > 0


def _old_key(key: str, plural: bool) -> str:
    """Earlier CompressAI names of the entropy bottleneck's parameters: ``_matrices.0`` (``plural``; the
    zoo's weights files) or ``_matrix0``."""
    for name, singular in (("matrices", "matrix"), ("biases", "bias"), ("factors", "factor")):
        prefix = f"entropy_bottleneck.{name}."
        if key.startswith(prefix):
            index = key[len(prefix):]
            return f"entropy_bottleneck._{name}.{index}" if plural else f"entropy_bottleneck._{singular}{index}"
    return key


def test_every_checkpoint_layout_gives_the_same_file(imported, tmp_path: Path):
    arch, net, weights = imported
    state = net.state_dict()
    layouts = {"bare": state, "data-parallel": {f"module.{k}": v for k, v in state.items()},
               "zoo-names": {_old_key(k, plural=True): v for k, v in state.items()},
               "1.1-names": {_old_key(k, plural=False): v for k, v in state.items()}}
    assert "entropy_bottleneck._matrices.0" in layouts["zoo-names"] and "entropy_bottleneck._matrix0" in layouts["1.1-names"]
    for name, layout in layouts.items():
        torch.save(layout, tmp_path / f"{name}.pth")
        out = tmp_path / name / weights.name
        out.parent.mkdir()
        assert main(["import-compressai", str(tmp_path / f"{name}.pth"), "--arch", arch, "--out", str(out)]) == 0
        assert sha256_of_file(out) == sha256_of_file(weights), name


def test_the_import_never_imports_compressai(tmp_path: Path):
    arch, checkpoint, out = "mbt2018-mean", tmp_path / "model.pth", tmp_path / "model.safetensors"
    torch.save(ARCHS[arch](N=8, M=12).state_dict(), checkpoint)
    script = ("import sys; sys.modules['compressai'] = None\n"  # any import of compressai now fails
              "from neuralcodec.cli import main\n"
              f"sys.exit(main(['import-compressai', {str(checkpoint)!r}, '--arch', {arch!r}, '--out', {str(out)!r}]))")
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    assert out.stat().st_size > 0


def _run_import(capsys: pytest.CaptureFixture, checkpoint: Path, arch: str, out: Path) -> str:
    assert main(["import-compressai", str(checkpoint), "--arch", arch, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    return error


def test_unsupported_checkpoints_are_one_line_errors(tmp_path: Path, capsys):
    torch.manual_seed(0)
    out = tmp_path / "out.safetensors"
    context = tmp_path / "context.pth"
    torch.save(models.JointAutoregressiveHierarchicalPriors(N=8, M=12).state_dict(), context)
    assert "context models" in _run_import(capsys, context, "mbt2018-mean", out)
    scale = tmp_path / "scale.pth"
    torch.save(models.ScaleHyperprior(N=8, M=12).state_dict(), scale)
    assert "another architecture" in _run_import(capsys, scale, "mbt2018-mean", out)
    assert "supported: bmshj2018-hyperprior, mbt2018-mean" in _run_import(capsys, scale, "cheng2020-anchor", out)
    pickled = tmp_path / "object.pth"
    torch.save(models.ScaleHyperprior(N=8, M=12), pickled)
    assert "state_dict()" in _run_import(capsys, pickled, "bmshj2018-hyperprior", out)
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    assert "not a weights-only torch checkpoint" in _run_import(capsys, text, "bmshj2018-hyperprior", out)
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    assert "no state dict" in _run_import(capsys, tensor, "bmshj2018-hyperprior", out)
    assert "not found" in _run_import(capsys, tmp_path / "missing.pth", "bmshj2018-hyperprior", out)
    assert ".safetensors" in _run_import(capsys, scale, "bmshj2018-hyperprior", tmp_path / "out.pth")
    named_like_weights = tmp_path / "scale.safetensors"
    named_like_weights.write_bytes(scale.read_bytes())
    assert "refusing to overwrite" in _run_import(capsys, named_like_weights, "bmshj2018-hyperprior", named_like_weights)
    assert named_like_weights.read_bytes() == scale.read_bytes()
    assert not out.exists()
