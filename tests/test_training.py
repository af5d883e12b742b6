"""The shared training loop: runs, logs, checkpoints atomically, resumes, and exports usable weights."""

from __future__ import annotations

import json
from dataclasses import replace
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


def _init_from_args(image_folder: Path, out: Path, weights: Path, *flags: str) -> list[str]:
    return ["train", "image-hyperprior", "--data", str(image_folder), "--out", str(out), "--steps", "1", "--crop", "64",
            "--batch-size", "2", "--device", "cpu", "--init-from", str(weights), *flags]


def test_init_from_takes_the_architecture_and_levels_of_the_starting_model(image_folder: Path, tmp_path: Path,
                                                                           tiny_weights: Path):
    """tiny_weights: N=16, M=24, mean-scale, λ (0.01, 0.05); the defaults would be N=128, M=192, 6 levels."""
    from neuralcodec.pretrained import load_weights_file

    assert main(_init_from_args(image_folder, tmp_path / "plain", tiny_weights)) == 0
    config = load_weights_file(tmp_path / "plain" / "model.safetensors").config
    assert (config["n"], config["m"], config["mean_scale"], config["lambdas"]) == (16, 24, True, [0.01, 0.05])
    # flags that agree with the model are accepted
    assert main(_init_from_args(image_folder, tmp_path / "same", tiny_weights, "--channels", "16",
                                "--latent-channels", "24", "--lmbda", "0.01", "--lmbda", "0.05")) == 0


@pytest.mark.parametrize("flags, message", [
    (("--channels", "8"), "--channels (N=8) contradicts --init-from {weights}, which has N=16; leave the flag out"),
    (("--latent-channels", "192"), "--latent-channels (M=192) contradicts --init-from {weights}, which has M=24"),
    (("--scale-only",), "--scale-only (scale-only) contradicts --init-from {weights}, which has mean-scale"),
    (("--lmbda", "0.01"), "--lmbda (1 levels: λ 0.01) contradicts --init-from {weights}, which has 2 levels: "
                          "λ 0.01, 0.05; add --change-levels to train these levels instead"),
    (("--lmbda", "0.02", "--lmbda", "0.05"), "which has 2 levels: λ 0.01, 0.05"),
])
def test_a_flag_contradicting_the_starting_model_is_a_one_line_error(image_folder: Path, tmp_path: Path,
                                                                     tiny_weights: Path, capsys, flags, message):
    out = tmp_path / "run"
    assert main(_init_from_args(image_folder, out, tiny_weights, *flags)) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message.format(weights=tiny_weights) in error
    assert not out.exists()


def test_change_levels_retrains_the_starting_model_for_other_levels(image_folder: Path, tmp_path: Path,
                                                                    tiny_weights: Path):
    from neuralcodec.pretrained import load_weights_file

    def lambdas(out: str, *values: str) -> list[float]:
        levels = [f"--lmbda={v}" for v in values]
        assert main(_init_from_args(image_folder, tmp_path / out, tiny_weights, "--change-levels", *levels)) == 0
        return load_weights_file(tmp_path / out / "model.safetensors").config["lambdas"]

    # new λs for the same number of levels: the levels are fine-tuned to them and the export records them
    assert lambdas("moved", "0.005", "0.02") == [0.005, 0.02]
    # a lower rate level added: the export has three levels, the two trained ones first fine-tuned
    assert lambdas("added", "0.0025", "0.01", "0.05") == [0.0025, 0.01, 0.05]
    # --change-levels alone (or without --init-from) says what it needs
    assert main(_init_from_args(image_folder, tmp_path / "alone", tiny_weights, "--change-levels")) == 2
    assert main(["train", "image-hyperprior", "--data", str(image_folder), "--out", str(tmp_path / "scratch"),
                 "--lmbda", "0.01", "--change-levels"]) == 2


def test_the_python_api_starts_from_the_models_config_and_refuses_another_architecture(
        image_folder: Path, tmp_path: Path, tiny_weights: Path):
    from neuralcodec.codecs.image.training import train_image_hyperprior
    from neuralcodec.errors import InputError

    config = TrainConfig(out_dir=str(tmp_path / "run"), steps=1, batch_size=2, device="cpu", amp=False)
    model = train_image_hyperprior(image_folder, config, crop=64, init_from=tiny_weights)
    assert (model.config.n, model.config.m, model.config.lambdas) == (16, 24, (0.01, 0.05))
    with pytest.raises(InputError, match="has architecture N=16 M=24 mean-scale in_channels=3, not N=8 M=24"):
        train_image_hyperprior(image_folder, replace(config, out_dir=str(tmp_path / "other")),
                               HyperpriorConfig(n=8, m=24, lambdas=(0.01, 0.05)), crop=64, init_from=tiny_weights)


@pytest.mark.parametrize("trainer", ["image-hyperprior", "video-st", "video-mc", "lossless-pc", "classifier",
                                     "face-embedder"])
def test_every_trainer_help_shows_its_defaults(trainer: str, capsys, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option
    with pytest.raises(SystemExit):
        main(["train", trainer, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--steps STEPS optimizer steps (default: 100000)", "--seed SEED seed of initialisation, crops "
                   "and splits (default: 0)", "--workers WORKERS data-loader worker processes (default: 0)",
                   "--threads THREADS CPU threads for torch (0: as many as torch picks) (default: 0)"):
        assert option in text
    own = {"image-hyperprior": ["--crop CROP random crop size (multiple of 64) (default: 256)",
                                "--channels CHANNELS transform width N (default: 128; with --init-from: the model's)",
                                "(default: 6 levels 0.0018-0.0483; with --init-from: the model's)",
                                "(with --task-loss) (default: 0.0)"],
           "video-st": ["--crop CROP random crop size (multiple of 64) (default: 256)", "(default: 1500)"],
           "video-mc": ["--crop CROP training crop size (multiple of 64) (default: 128)", "(default: 4000)"],
           "lossless-pc": ["--hidden HIDDEN latent states per pixel (H) (default: 32)"],
           "classifier": ["(default: 24)"], "face-embedder": ["(default: 16)", "(default: strided)"]}
    assert all(option in text for option in own[trainer])


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


def test_cli_trains_a_classifier_with_its_labels_file_given_by_labels(tmp_path: Path, capsys):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "images-idx3-ubyte", rng.integers(0, 256, (40, 12, 12), dtype=np.uint8))
    write_idx(tmp_path / "elsewhere-idx1-ubyte", rng.integers(0, 2, 40, dtype=np.uint8))
    args = ["train", "classifier", "--data", str(tmp_path / "images-idx3-ubyte"), "--steps", "1", "--width", "2",
            "--batch-size", "8", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "no-labels")]) == 2
    assert "give it with --labels" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "run"), "--labels", str(tmp_path / "elsewhere-idx1-ubyte")]) == 0
    assert (tmp_path / "run" / "model.safetensors").is_file()
