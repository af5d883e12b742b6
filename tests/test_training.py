"""The shared training loop: runs, logs, checkpoints atomically, resumes, and exports usable weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from neuralcodec.cli import main
from neuralcodec.media.idx import write_idx
from neuralcodec.codecs.image.model import HyperpriorConfig, ImageHyperprior
from neuralcodec.codecs.video.model import SpatiotemporalVideoModel, VideoConfig
from neuralcodec.media.images import list_images
from neuralcodec.train.datasets import RandomCropDataset, split_files
from neuralcodec.codecs.image.rd_task import ImageRateDistortionTask
from neuralcodec.train.losses import RateDistortionLoss
from neuralcodec.train.loop import (
    TrainConfig, _split_parameters, autocast_available, fit, learning_rate_factor, load_checkpoint,
)


def _tiny_model() -> ImageHyperprior:
    torch.manual_seed(0)
    return ImageHyperprior(HyperpriorConfig(n=8, m=12, lambdas=(0.01, 0.1)))


def _tiny_fit(image_folder: Path, out: Path, steps: int, amp: bool = False) -> ImageHyperprior:
    model = _tiny_model()
    data = RandomCropDataset(list_images(image_folder), crop=64, samples_per_epoch=8)
    config = TrainConfig(out_dir=str(out), steps=steps, batch_size=2, checkpoint_every=2, validate_every=100,
                         device="cpu", amp=amp)
    return fit(model, ImageRateDistortionTask(model.config.lambdas), data, None, config)


def test_fit_logs_checkpoints_and_resumes(image_folder: Path, tmp_path: Path):
    out = tmp_path / "run"
    _tiny_fit(image_folder, out, steps=4)
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 4
    model = _tiny_fit(image_folder, out, steps=6)
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 6
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [4, 6]
    assert all(np.isfinite(r["loss"]) and r["bpp"] > 0 for r in records)
    assert not list(out.glob("*.tmp*")), "no temporary files are left behind"
    saved = load_checkpoint(out / "checkpoint.pt")["model"]
    assert torch.equal(saved["g_a.0.weight"], model.state_dict()["g_a.0.weight"])


def test_checkpoints_with_compressai_constant_buffers_resume(image_folder: Path, tmp_path: Path):
    """Checkpoints written while the entropy models and GDN came from compressai hold its constant buffers."""
    out = tmp_path / "run"
    _tiny_fit(image_folder, out, steps=2)
    state = load_checkpoint(out / "checkpoint.pt")
    legacy = ["entropy_bottleneck._offset", "entropy_bottleneck._quantized_cdf", "entropy_bottleneck.target",
              "entropy_bottleneck.likelihood_lower_bound.bound", "g_a.1.beta_reparam.lower_bound.bound",
              "gaussian_conditional.conditional.scale_table", "gaussian_conditional.conditional.scale_bound"]
    state["model"].update({key: torch.zeros(1) for key in legacy})
    torch.save(state, out / "checkpoint.pt")
    _tiny_fit(image_folder, out, steps=4)
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 4
    assert not set(legacy) & set(load_checkpoint(out / "checkpoint.pt")["model"])


def test_the_auxiliary_optimizer_gets_the_models_aux_parameters():
    image = _tiny_model()
    main, aux = _split_parameters(image)
    assert aux == [image.entropy_bottleneck.quantiles]
    assert {id(p) for p in main} == {id(p) for p in image.parameters()} - {id(image.entropy_bottleneck.quantiles)}
    image.requires_grad_(False)
    video = SpatiotemporalVideoModel(VideoConfig(image.config, hidden=8), image)
    main, aux = _split_parameters(video)
    assert aux == [video.prior.entropy_bottleneck.quantiles]
    assert {id(p) for p in main} == {id(p) for p in video.prior.parameters()} - {id(aux[0])}


class _RecordingCrops(RandomCropDataset):
    """Random crops that remember every crop they hand out."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.drawn: list[torch.Tensor] = []

    def __getitem__(self, index: int) -> torch.Tensor:
        self.drawn.append(super().__getitem__(index))
        return self.drawn[-1]


def test_a_resumed_run_draws_new_crops_instead_of_replaying_its_first_ones(image_folder: Path, tmp_path: Path):
    def run(steps: int) -> _RecordingCrops:
        data = _RecordingCrops(list_images(image_folder), crop=64, samples_per_epoch=8)
        config = TrainConfig(out_dir=str(tmp_path / "run"), steps=steps, batch_size=2, checkpoint_every=2,
                             validate_every=100, device="cpu", amp=False)
        fit(_tiny_model(), ImageRateDistortionTask((0.01, 0.1)), data, None, config)
        return data

    first, resumed = run(2), run(4)
    assert len(first.drawn) >= 4 and len(resumed.drawn) >= 4
    assert not any(torch.equal(a, b) for a in first.drawn for b in resumed.drawn)


def test_training_reduces_the_loss(image_folder: Path, tmp_path: Path):
    torch.manual_seed(0)
    model = ImageHyperprior(HyperpriorConfig(n=8, m=12, lambdas=(0.05,)))
    task = ImageRateDistortionTask(model.config.lambdas)
    batch = torch.stack([RandomCropDataset(list_images(image_folder), crop=64)[i] for i in range(4)])
    optimizer = torch.optim.Adam(_split_parameters(model)[0], lr=1e-3)
    losses = []
    for _ in range(30):
        loss = task.training_step(model, batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]


def test_rate_distortion_loss_values():
    x = torch.full((2, 3, 8, 8), 0.5)
    out = {"x_hat": x + 1 / 255, "likelihoods": {"y": torch.full((2, 4, 2, 2), 0.5)}}
    result = RateDistortionLoss("mse")(out, x, torch.tensor([1.0, 2.0]))
    assert result["bpp"].item() == pytest.approx(16 / 64)
    assert result["loss"].item() == pytest.approx(16 / 64 + 1.5 * 1.0, rel=1e-4)
    with pytest.raises(ValueError):
        RateDistortionLoss("l1")


def test_split_is_deterministic_and_disjoint(tmp_path: Path):
    files = [tmp_path / f"{i}.png" for i in range(40)]
    train, val = split_files(files, 0.1)
    assert len(val) == 4 and not set(train) & set(val) and split_files(files, 0.1) == (train, val)


def test_cli_train_exports_weights_that_encode(image_folder: Path, tmp_path: Path, photo_png: Path):
    out = tmp_path / "cli-run"
    code = main(["train", "image-hyperprior", "--data", str(image_folder), "--out", str(out), "--steps", "2",
                 "--channels", "8", "--latent-channels", "12", "--crop", "64", "--batch-size", "2", "--lmbda", "0.01", "--lmbda", "0.1",
                 "--val-fraction", "0.25", "--device", "cpu"])
    assert code == 0
    weights = out / "model.safetensors"
    assert main(["encode", str(photo_png), str(tmp_path / "x.ncd"), "--model", str(weights), "--verify"]) == 0


def test_cli_train_sets_the_learning_rate_decay_start(image_folder: Path, tmp_path: Path):
    def args(out: Path, decay_start: str) -> list[str]:
        return ["train", "image-hyperprior", "--data", str(image_folder), "--out", str(out), "--steps", "1",
                "--channels", "8", "--latent-channels", "12", "--crop", "64", "--batch-size", "2",
                "--device", "cpu", "--lr-decay-start", decay_start]

    assert main(args(tmp_path / "run", "0.5")) == 0
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["config"]["lr_decay_start"] == 0.5
    assert main(args(tmp_path / "bad", "1.5")) == 2
    assert not (tmp_path / "bad").exists()


def test_learning_rate_is_constant_until_the_decay_start_then_falls_to_one_percent():
    config = TrainConfig(out_dir="unused", steps=100, lr_decay_start=0.6)
    factors = [learning_rate_factor(step, config) for step in range(101)]
    assert factors[:61] == [1.0] * 61
    assert all(a > b for a, b in zip(factors[60:], factors[61:]))
    assert factors[100] == pytest.approx(0.01)


def test_cli_train_can_start_from_existing_weights(image_folder: Path, tmp_path: Path, tiny_weights: Path):
    def args(out: Path, channels: str, lambdas: tuple[str, ...] = ("0.01", "0.05")) -> list[str]:
        return ["train", "image-hyperprior", "--data", str(image_folder), "--out", str(out), "--steps", "1",
                "--channels", channels, "--latent-channels", "24", *(f"--lmbda={v}" for v in lambdas),
                "--crop", "64", "--batch-size", "2", "--device", "cpu", "--init-from", str(tiny_weights)]

    assert main(args(tmp_path / "finetune", "16")) == 0
    assert (tmp_path / "finetune" / "model.safetensors").exists()
    assert main(args(tmp_path / "mismatch", "8")) == 2  # architecture differs from the weights
    # new λs for the same number of levels: the levels are fine-tuned to them and the export records them
    assert main(args(tmp_path / "lower", "16", ("0.005", "0.02"))) == 0
    from neuralcodec.pretrained import load_weights_file

    assert load_weights_file(tmp_path / "lower" / "model.safetensors").config["lambdas"] == [0.005, 0.02]
    # a lower rate level added: the export has three levels, the two trained ones first fine-tuned
    assert main(args(tmp_path / "levels", "16", ("0.0025", "0.01", "0.05"))) == 0
    assert load_weights_file(tmp_path / "levels" / "model.safetensors").config["lambdas"] == [0.0025, 0.01, 0.05]


def test_added_rate_levels_start_from_the_nearest_trained_level():
    torch.manual_seed(5)
    model = ImageHyperprior(HyperpriorConfig(n=8, m=12, lambdas=(0.01, 0.04))).eval()
    extended = model.with_lambdas((0.0025, 0.01, 0.04)).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for old, new in ((0.0, 1.0), (1.0, 2.0)):  # trained levels: the same function
            assert torch.equal(model(x, old)["x_hat"], extended(x, new)["x_hat"])
        # the new level's latent gains are the lowest level's, scaled by sqrt(0.0025 / 0.01) = 1/2
        assert torch.allclose(extended.latent_gain.log_gain[0], model.latent_gain.log_gain[0] - np.log(2.0))
        assert torch.allclose(extended.latent_gain.log_inverse[0], model.latent_gain.log_inverse[0] + np.log(2.0))
        assert torch.equal(extended.hyper_gain.log_gain[0], model.hyper_gain.log_gain[0])
    assert extended.config.lambdas == (0.0025, 0.01, 0.04)


def test_exported_weights_are_byte_identical_every_time(tmp_path: Path):
    """Same tensors and metadata -> same file and sha256 (the registry records it)."""
    from neuralcodec.pretrained import load_weights_file, save_weights

    tensors = {"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(4, dtype=torch.int32)}
    config = {"z": 1, "a": [1, 2], "m": {"q": 0.5}}
    hashes = {save_weights(tmp_path / f"w{i}.safetensors", tensors, "codec-x", "model-y", config) for i in range(5)}
    assert len(hashes) == 1
    loaded = load_weights_file(tmp_path / "w0.safetensors")
    assert (loaded.codec, loaded.model_id, loaded.config) == ("codec-x", "model-y", config)


needs_bf16 = pytest.mark.skipif(not autocast_available(torch.device("cpu")), reason="this CPU has no native bf16")


@needs_bf16
def test_bf16_autocast_runs_the_transforms_in_bf16_and_the_entropy_models_in_float32():
    image = _tiny_model().train()
    video = SpatiotemporalVideoModel(VideoConfig(image.config, hidden=8), image).train()
    x = torch.rand(2, 3, 64, 64)
    level = torch.tensor([0.0, 1.0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = image(x, level)
        y = image.latent_gain.scale(image.g_a(x), level).float()
        p_frame = video.prior(y, y.round(), video.latent_gain(level), level)
    assert out["x_hat"].dtype == torch.bfloat16
    for likelihoods in (out["likelihoods"], p_frame["likelihoods"]):
        assert all(lik.dtype == torch.float32 for lik in likelihoods.values())


@needs_bf16
def test_fit_with_cpu_autocast_trains_float32_parameters(image_folder: Path, tmp_path: Path):
    before = _tiny_model().g_a[0].weight.detach()
    model = _tiny_fit(image_folder, tmp_path / "run", steps=3, amp=True)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert records and all(np.isfinite(r["loss"]) for r in records)
    assert model.g_a[0].weight.dtype == torch.float32
    assert not torch.equal(model.g_a[0].weight, before)


def test_lossless_training_stays_float32_whatever_amp_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import neuralcodec.codecs.lossless.training as lossless

    seen = []
    monkeypatch.setattr(lossless, "fit", lambda model, task, train, val, config: seen.append(config) or model)
    images = np.random.default_rng(0).integers(0, 256, size=(20, 6, 6), dtype=np.uint8)
    write_idx(tmp_path / "train-ubyte.gz", images)
    lossless.train_lossless_pc(tmp_path / "train-ubyte.gz", TrainConfig(out_dir=str(tmp_path / "run"), amp=True), hidden=2)
    assert [config.amp for config in seen] == [False]
