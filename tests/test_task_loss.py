"""The task-aware (identity-preserving) distortion and codec training with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec.cli import main
from neuralcodec.codecs.image.model import HyperpriorConfig, ImageHyperprior
from neuralcodec.perception.networks import FaceEmbedder, FaceEmbedderConfig
from neuralcodec.perception.weights import export_perception_model
from neuralcodec.media.images import list_images
from neuralcodec.train.datasets import WholeImageDataset
from neuralcodec.codecs.image.rd_task import ImageRateDistortionTask
from neuralcodec.train.losses import RateDistortionLoss
from neuralcodec.train.loop import TrainConfig, fit
from neuralcodec.train.task_loss import TaskDistortion, rgb_to_gray


def _embedder(seed: int = 0) -> FaceEmbedder:
    torch.manual_seed(seed)
    return FaceEmbedder(FaceEmbedderConfig(height=40, width=36, embedding=8, width_multiplier=4))


def test_task_distortion_is_zero_for_identical_images_and_differentiable():
    distortion = TaskDistortion(_embedder(), to_input=rgb_to_gray, layers=("features.2",))
    x = torch.rand(3, 3, 40, 36)
    assert torch.allclose(distortion(x.clone(), x), torch.zeros(3), atol=1e-6)
    x_hat = (x + 0.2 * torch.randn_like(x)).clamp(0, 1).requires_grad_(True)
    value = distortion(x_hat, x)
    assert value.shape == (3,) and bool((value > 0).all())
    value.sum().backward()
    assert x_hat.grad is not None and float(x_hat.grad.abs().sum()) > 0
    assert all(p.grad is None and not p.requires_grad for p in distortion.network.parameters())


def test_task_distortion_keeps_the_network_in_eval_mode_and_checks_layer_names():
    distortion = TaskDistortion(_embedder())
    distortion.train()
    assert not distortion.network.training
    with pytest.raises(ValueError, match="no layers"):
        TaskDistortion(_embedder(), layers=("nope",))


def test_loss_adds_alpha_times_task_distance():
    torch.manual_seed(1)
    x = torch.rand(2, 3, 40, 36)
    output = {"x_hat": (x + 0.4 * torch.randn_like(x)).clamp(0, 1), "likelihoods": {"y": torch.full((2, 4, 3, 3), 0.5)}}
    lmbda = torch.tensor([0.01, 0.01])
    plain = RateDistortionLoss()(output, x, lmbda)
    distortion = TaskDistortion(_embedder(), to_input=rgb_to_gray, layers=("features.2",))
    aware = RateDistortionLoss(task_distortion=distortion, task_weight=50.0)(output, x, lmbda)
    expected = plain["loss"] + 0.01 * 50.0 * distortion(output["x_hat"], x).mean()
    assert torch.allclose(aware["loss"], expected) and float(aware["task_distance"]) > 0


@pytest.fixture
def face_images(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "faces"
    folder.mkdir()
    for index in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 36), dtype=np.uint8)).save(folder / f"{index}.png")
    return folder


def test_codec_training_with_the_task_loss_leaves_the_task_network_unchanged(face_images: Path, tmp_path: Path):
    embedder = _embedder()
    before = {k: v.clone() for k, v in embedder.state_dict().items()}
    torch.manual_seed(0)
    model = ImageHyperprior(HyperpriorConfig(n=8, m=12, lambdas=(0.01, 0.1)))
    codec_before = model.g_a[0].weight.detach().clone()
    loss = RateDistortionLoss(task_distortion=TaskDistortion(embedder, to_input=rgb_to_gray), task_weight=100.0)
    config = TrainConfig(out_dir=str(tmp_path / "run"), steps=3, batch_size=2, checkpoint_every=10, validate_every=100,
                         device="cpu", amp=False)
    fit(model, ImageRateDistortionTask(model.config.lambdas, loss), WholeImageDataset(list_images(face_images)), None,
        config)
    after = embedder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the frozen network (and its BN statistics) changed"
    assert not torch.equal(codec_before, model.g_a[0].weight), "the codec did train"


def test_cli_trains_a_task_aware_codec_from_a_file_list(face_images: Path, tmp_path: Path):
    weights = tmp_path / "embedder.safetensors"
    export_perception_model(_embedder(), weights, "toy-embedder")
    listing = tmp_path / "train.txt"
    listing.write_text("\n".join(f"faces/{i}.png" for i in range(3)) + "\n")
    assert main(["train", "image-hyperprior", "--data", str(listing), "--whole-images", "--out", str(tmp_path / "r"),
                 "--channels", "8", "--latent-channels", "12", "--lmbda", "0.01", "--steps", "2", "--batch-size", "2",
                 "--task-loss", str(weights), "--task-weight", "10", "--task-layers", "features.2",
                 "--device", "cpu"]) == 0
    assert (tmp_path / "r" / "model.safetensors").is_file()
    bad_layer = ["train", "image-hyperprior", "--data", str(listing), "--whole-images", "--out", str(tmp_path / "r4"),
                 "--channels", "8", "--latent-channels", "12", "--lmbda", "0.01", "--steps", "1",
                 "--task-loss", str(weights), "--task-weight", "10", "--task-layers", "no.such.layer"]
    assert main(bad_layer) == 2
    without_task_network = bad_layer[:-6] + ["--task-layers", "features.2"]
    assert "--task-loss" not in without_task_network
    assert main(without_task_network) == 2
    assert main(["train", "image-hyperprior", "--data", str(listing), "--out", str(tmp_path / "r2"),
                 "--task-weight", "10"]) == 2
    listing.write_text("faces/missing.png\n")
    assert main(["train", "image-hyperprior", "--data", str(listing), "--out", str(tmp_path / "r3")]) == 2
