"""Machine-perception tasks: the shipped-model tasks, the torchvision task, grey-image coding and the
task columns of `codec eval` reports, on generated data (the shipped-model checks need ../shared)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec.cli import main
from neuralcodec.media.idx import write_idx
from neuralcodec.errors import InputError, NeuralCodecError
from neuralcodec.eval.adapters import image_adapter
from neuralcodec.eval.measure import measure_image
from neuralcodec.metrics import ssim
from neuralcodec.eval.report import _correlations
from neuralcodec.eval.runner import evaluate
from neuralcodec.eval.tasks import perception_task
from neuralcodec.eval.tasks.faces import FaceIdentificationTask
from neuralcodec.perception.data import read_orl_faces, split_faces
from neuralcodec.perception.networks import ClassifierConfig, FaceEmbedderConfig
from neuralcodec.perception.training import leave_one_out_rank1, train_classifier, train_face_embedder
from neuralcodec.perception.weights import export_perception_model, load_classifier, load_face_embedder
from neuralcodec.train.loop import TrainConfig
from tests.conftest import require_shared


def _digits(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two separable 12x12 'classes': a bright square on the left or on the right, with noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    images = rng.integers(0, 40, (count, 12, 12)).astype(np.uint8)
    for image, label in zip(images, labels):
        image[3:9, 1:6] += 200 * (label == 0)
        image[3:9, 6:11] += 200 * (label == 1)
    return images, labels.astype(np.uint8)


@pytest.fixture(scope="module")
def idx_test_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("idx")
    images, labels = _digits(24, seed=1)
    write_idx(folder / "toy-images-idx3-ubyte", images)
    write_idx(folder / "toy-labels-idx1-ubyte", labels)
    return folder / "toy-images-idx3-ubyte"


@pytest.fixture(scope="module")
def trained_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from neuralcodec.perception.data import LabelledImages

    images, labels = _digits(256)
    data = LabelledImages(images, labels.astype(np.int64), [str(i) for i in range(len(labels))])
    out = tmp_path_factory.mktemp("classifier")
    config = TrainConfig(out_dir=str(out), steps=40, batch_size=32, lr=3e-3, validate_every=1000, device="cpu",
                         amp=False, checkpoint_every=1000)
    model = train_classifier(data, data, config, ClassifierConfig(height=12, width=12, classes=2, width_multiplier=4))
    export_perception_model(model, out / "toy.safetensors", "toy-classifier")
    return out / "toy.safetensors"


@pytest.fixture(scope="module")
def face_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 'subjects' (a fixed random pattern each) x 3 noisy images, in the ORL layout."""
    folder = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(3)
    lines = ["path,subject,image_index,source_repo"]
    for subject in (1, 2, 3):
        pattern = rng.integers(0, 256, (28, 24)).astype(np.float32)
        (folder / f"s{subject}").mkdir()
        for index in (1, 2, 3):
            image = np.clip(pattern + rng.normal(0, 12, pattern.shape), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(folder / f"s{subject}" / f"{index}.png")
            lines.append(f"s{subject}/{index}.png,{subject},{index},generated")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def face_embedder(tmp_path_factory: pytest.TempPathFactory, face_folder: Path) -> Path:
    """A toy embedder trained for a few steps on the toy subjects 1-2 (subject 3 stays unseen)."""
    train, _ = split_faces(read_orl_faces(face_folder), held_out=(3,))
    out = tmp_path_factory.mktemp("embedder")
    config = TrainConfig(out_dir=str(out), steps=30, batch_size=6, lr=3e-3, validate_every=1000, device="cpu",
                         amp=False, checkpoint_every=1000)
    model = train_face_embedder(train, train, config, FaceEmbedderConfig(height=28, width=24, embedding=16,
                                                                         width_multiplier=4))
    export_perception_model(model, out / "faces.safetensors", "toy-embedder")
    return out / "faces.safetensors"


def test_ssim_matches_scikit_image_gaussian_ssim(photo: np.ndarray):
    from skimage.metrics import structural_similarity

    noisy = np.clip(photo.astype(int) + np.random.default_rng(0).integers(-20, 21, photo.shape), 0, 255).astype(np.uint8)
    gray, noisy_gray = photo[..., 0], noisy[..., 0]
    expected = structural_similarity(gray, noisy_gray, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=255)
    assert ssim(gray, noisy_gray) == pytest.approx(expected, abs=2e-3)
    assert ssim(gray, gray) == pytest.approx(1.0)
    with pytest.raises(InputError):
        ssim(gray[:8, :8], gray[:8, :8])


@pytest.mark.parametrize("name", ["jpeg", "webp", "jpeg2000", "jpegxl", "hevc", "av1"])
def test_grey_images_round_trip_as_grey(name: str, photo: np.ndarray):
    adapter = image_adapter(name)
    if adapter.unavailable_reason():
        pytest.skip(adapter.unavailable_reason())
    gray = np.ascontiguousarray(photo[:45, :61, 1])
    low, decoded = measure_image(adapter, gray, adapter.qualities[0])
    high, _ = measure_image(adapter, gray, adapter.qualities[-1])
    assert decoded.shape == gray.shape and low["psnr_y"] is None and low["ms_ssim"] is None
    assert low["bytes"] < high["bytes"] and high["psnr"] > low["psnr"] and 0 < low["ssim"] < high["ssim"] <= 1


def test_learned_codecs_get_grey_images_as_rgb_and_return_grey(tiny_weights: Path, photo: np.ndarray):
    gray = np.ascontiguousarray(photo[:, :, 1])
    measured, decoded = measure_image(image_adapter(str(tiny_weights)), gray, 2.0)
    assert decoded.shape == gray.shape and measured["bpp"] > 0


def test_trained_classifier_round_trips_through_safetensors(trained_classifier: Path, idx_test_set: Path):
    task = perception_task("classify", model=str(trained_classifier))
    samples = task.samples(idx_test_set)
    reference = task.summarize([task.score(s, s.signal) for s in samples])
    assert reference["accuracy"] > 0.9 and reference["agreement"] == 1.0 and reference["samples"] == 24
    flat = [task.score(s, np.full_like(s.signal, 128)) for s in samples]  # no information left
    assert task.summarize(flat)["accuracy"] < 0.8
    with pytest.raises(InputError, match="classifier"):
        load_face_embedder(str(trained_classifier))


def test_codec_eval_with_a_task_reports_degradation_and_correlation(trained_classifier: Path, idx_test_set: Path,
                                                                     tmp_path: Path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", "--task", "classify", "--task-model", str(trained_classifier), "--data", str(idx_test_set),
                 "--codecs", "jpeg,webp", "--qualities", "jpeg=1,10,50,90", "--qualities", "webp=0,50",
                 "--out", str(out)]) == 0
    assert "degradation" in capsys.readouterr().out
    result = json.loads((out / "results.json").read_text())
    reference = result["task"]["uncompressed"]["accuracy"]
    model = load_classifier(str(trained_classifier))
    images, labels = _digits(24, seed=1)
    with torch.no_grad():
        direct = (model(torch.from_numpy(images).float()[:, None] / 255).argmax(1).numpy() == labels).mean()
    assert reference == pytest.approx(direct)
    jpeg = result["curves"]["jpeg"]
    assert [p["quality"] for p in sorted(jpeg, key=lambda p: p["quality"])] == [1, 10, 50, 90]
    for point in jpeg:
        assert point["degradation"] == pytest.approx(reference - point["task"]["accuracy"])
    assert set(result["task"]["correlation_with_headline"]) <= {"bpp", "psnr", "ssim"}
    within = result["task"]["rate_within_degradation"]["jpeg"]
    assert set(within) == {"0.01", "0.05"}
    lowest_ok = min((p["bpp"] for p in jpeg if p["degradation"] <= 0.05), default=None)
    assert within["0.05"] is None if lowest_ok is None else within["0.05"] <= lowest_ok
    for name in ("task_vs_rate.png", "task_vs_psnr.png", "rd_ssim.png", "results.csv"):
        assert (out / name).stat().st_size > 0
    assert "task_correct" in (out / "results.csv").read_text().splitlines()[0]


def test_correlations_are_computed_over_operating_points():
    curves = {"a": [{"psnr": 20.0, "bpp": 0.1, "task": {"acc": 0.5}}, {"psnr": 30.0, "bpp": 0.5, "task": {"acc": 0.7}}],
              "b": [{"psnr": 25.0, "bpp": 0.2, "task": {"acc": 0.6}}, {"psnr": 40.0, "bpp": 0.3, "task": {"acc": 0.65}}]}
    result = _correlations(curves, ("bpp", "psnr"), "acc")
    # accuracy ranks (1,4,2,3); PSNR ranks (1,3,2,4): sum d^2 = 2, rho = 1 - 6*2/(4*15) = 0.8
    assert result["psnr"]["spearman"] == pytest.approx(0.8)
    assert result["bpp"]["spearman"] == pytest.approx(1.0)  # bpp ranks (1,4,2,3): the same order
    assert result["psnr"]["points"] == 4


def test_face_task_scores_leave_one_out_identification(face_folder: Path, face_embedder: Path):
    task = FaceIdentificationTask(str(face_embedder), subjects=None)
    samples = task.samples(face_folder)
    assert len(samples) == 9 and task.threshold == task.threshold  # a number, not NaN
    scores = [task.score(s, s.signal) for s in samples]
    faces = read_orl_faces(face_folder)
    embedder = load_face_embedder(str(face_embedder))
    with torch.no_grad():
        embeddings = embedder(torch.from_numpy(faces.images).float()[:, None] / 255)
    expected = leave_one_out_rank1(embeddings, torch.from_numpy(faces.labels))
    summary = task.summarize(scores)
    assert summary["accuracy"] == pytest.approx(expected)
    assert summary["cosine_to_original"] == pytest.approx(1.0, abs=1e-5)
    assert all(s["genuine"] == 2 and s["impostor"] == 6 for s in scores)
    assert summary["far"] <= 1 / 6 + 1e-9  # threshold at the 99th percentile of the 54 impostor pairs
    with pytest.raises(InputError, match="samples"):
        task.score(samples[0].__class__("elsewhere.png", samples[0].signal), samples[0].signal)


def test_face_task_sweep_end_to_end(face_folder: Path, face_embedder: Path, tmp_path: Path):
    task = FaceIdentificationTask(str(face_embedder), subjects=None)
    result = evaluate(["jpeg"], face_folder, tmp_path / "faces", task=task, qualities={"jpeg": [1, 90]}, progress=False)
    low, high = sorted(result["curves"]["jpeg"], key=lambda p: p["quality"])
    assert low["bpp"] < high["bpp"] and low["task"]["cosine_to_original"] < high["task"]["cosine_to_original"]
    assert result["task"]["uncompressed"]["samples"] == 9


def test_torchvision_task_agrees_with_itself_on_originals(tmp_path: Path, photo_png: Path):
    torchvision = pytest.importorskip("torchvision")  # the eval extra

    torch.manual_seed(0)
    weights = tmp_path / "squeezenet.pth"
    torch.save(torchvision.models.squeezenet1_1(num_classes=1000).state_dict(), weights)
    task = perception_task("classify", arch="squeezenet1_1", weights=str(weights))
    [sample] = task.samples(photo_png.parent)
    assert task.score(sample, sample.signal) == {"top1": 1, "top5": 1}
    with pytest.raises(InputError, match="does not fit"):
        perception_task("classify", arch="resnet18", weights=str(weights))
    with pytest.raises(InputError, match="unknown torchvision"):
        perception_task("classify", arch="no_such_net", weights=str(weights))


def test_torchvision_task_without_torchvision_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # what an install without the eval extra has
    with pytest.raises(NeuralCodecError, match=r"classify --arch needs torchvision: pip install 'neuralcodec\[eval\]'"):
        perception_task("classify", arch="resnet18", weights=str(tmp_path / "x.pth"))


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "classify", "arch": "resnet18"}, "--weights"),
    ({"name": "classify", "weights": "x.pth"}, "--arch"),
    ({"name": "face-id", "arch": "resnet18"}, "classify"),
    ({"name": "speech-wer", "model": "x"}, "PocketSphinx"),
    ({"name": "ocr"}, "unknown task"),
])
def test_task_options_are_checked(kwargs: dict, message: str):
    with pytest.raises(InputError, match=message):
        perception_task(**kwargs)


def test_shipped_mnist_classifier_accuracy():
    test_images = require_shared("mnist", "t10k-images-idx3-ubyte.gz")
    task = perception_task("classify", model="classifier-mnist")
    samples = task.samples(test_images, limit=1000)
    assert task.summarize([task.score(s, s.signal) for s in samples])["accuracy"] > 0.98


def test_shipped_face_embedder_identifies_held_out_subjects():
    faces = require_shared("faces", "orl")
    task = perception_task("face-id")
    samples = task.samples(faces)
    assert len(samples) == 120
    assert task.summarize([task.score(s, s.signal) for s in samples])["accuracy"] > 0.9


def test_face_id_limit_keeps_the_first_faces_of_each_subject(face_folder: Path, face_embedder: Path):
    task = FaceIdentificationTask(str(face_embedder), subjects=None)
    samples = task.samples(face_folder, limit=2)
    assert [s.key for s in samples] == [f"s{subject}/{index}.png" for subject in (1, 2, 3) for index in (1, 2)]
    scores = [task.score(s, s.signal) for s in samples]
    assert all(s["genuine"] == 2 and s["impostor"] == 6 for s in scores)  # the gallery stays complete


def test_classify_takes_its_labels_file_from_labels(trained_classifier: Path, idx_test_set: Path, tmp_path: Path,
                                                    capsys):
    elsewhere = tmp_path / "images-only"
    elsewhere.mkdir()
    images = elsewhere / idx_test_set.name
    images.write_bytes(idx_test_set.read_bytes())
    labels = idx_test_set.with_name("toy-labels-idx1-ubyte")

    def run(*extra: str) -> int:
        return main(["eval", "--task", "classify", "--task-model", str(trained_classifier), "--data", str(images),
                     "--codecs", "jpeg", "--qualities", "jpeg=50", "--out", str(tmp_path / "out"), *extra])

    assert run() == 2
    assert "no labels file beside" in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert run("--labels", str(tmp_path / "missing-labels")) == 2
    assert "labels file not found" in capsys.readouterr().err
    assert run("--labels", str(labels)) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["task"]["uncompressed"]["samples"] == 24 and result["task"]["uncompressed"]["accuracy"] > 0.9


@pytest.mark.parametrize("kwargs", [{"name": "face-id", "labels": "l"},
                                    {"name": "classify", "arch": "resnet18", "weights": "w.pth", "labels": "l"}])
def test_labels_are_refused_where_no_labels_are_read(kwargs: dict):
    with pytest.raises(InputError, match="--labels"):
        perception_task(**kwargs)
