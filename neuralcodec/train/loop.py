"""The one training loop every codec uses.

A codec plugs in through a :class:`TrainingTask` (how to compute the loss of a batch and how to
validate); the loop owns everything else: main + auxiliary optimizers, learning-rate schedule, mixed
precision (bfloat16 autocast on GPUs and on CPUs with native bfloat16 instructions), DDP when started
with ``torchrun``, atomic resumable checkpoints, a progress bar, a JSONL log and periodic validation.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from neuralcodec.errors import InputError
from neuralcodec.fileio import atomic_output

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 dot products natively (AVX512-BF16 or AMX), which makes
    bf16 autocast several times faster than float32 for convolutions (3x for an image-hyperprior
    training step on a 2-core AMD EPYC, ``benchmarks/train_speed.py``); without them bf16 is emulated."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def autocast_available(device: torch.device) -> bool:
    """Whether :func:`fit` autocasts to bfloat16 on ``device`` when ``TrainConfig.amp`` is set."""
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())


class TrainingTask(Protocol):
    """What a codec family provides to the loop."""

    def training_step(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        """Loss of one batch: a dict with ``loss`` (scalar to minimize) and any metrics to log."""

    def validate(self, model: nn.Module, loader: DataLoader) -> dict[str, float]:
        """Metrics on the validation set (called under ``torch.no_grad`` in eval mode)."""


@runtime_checkable
class AuxiliaryLoss(Protocol):
    """A model with parameters of its own loss (entropy-model quantiles), trained by a second optimizer."""

    def aux_parameters(self) -> list[nn.Parameter]:
        """The parameters :meth:`aux_loss` trains; the main optimizer leaves them alone."""

    def aux_loss(self) -> torch.Tensor:
        """The auxiliary loss (its gradient reaches the auxiliary parameters only)."""


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`fit`; stored in every checkpoint and log."""

    out_dir: str
    steps: int = 100_000
    batch_size: int = 8
    lr: float = 1e-4
    aux_lr: float = 1e-3
    lr_decay_start: float = 0.85
    """Fraction of ``steps`` after which the learning rate decays (cosine) to 1% of ``lr``."""
    grad_clip: float = 1.0
    checkpoint_every: int = 500
    validate_every: int = 2000
    val_batch_size: int = 1
    num_workers: int = 0
    seed: int = 0
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    amp: bool = True
    """bfloat16 autocast of the transforms where :func:`autocast_available` (entropy models stay float32)."""
    threads: int = 0
    """CPU threads for torch (0 = torch's default)."""
    max_skipped_steps: int = 20
    """Batches with a non-finite loss are skipped; more than this many stops training."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.lr_decay_start <= 1.0:
            raise InputError(f"lr_decay_start (--lr-decay-start) must be between 0 and 1, got {self.lr_decay_start}")


def learning_rate_factor(step: int, config: TrainConfig) -> float:
    """Multiplier of ``config.lr`` at ``step``: 1 until ``lr_decay_start``, then a cosine down to 0.01."""
    start = int(config.lr_decay_start * config.steps)
    if step < start:
        return 1.0
    progress = (step - start) / max(1, config.steps - start)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Trainable main parameters, and the auxiliary ones (:class:`AuxiliaryLoss`) trained by aux_loss."""
    aux = [p for p in model.aux_parameters() if p.requires_grad] if isinstance(model, AuxiliaryLoss) else []
    aux_ids = {id(p) for p in aux}
    main = [p for p in model.parameters() if p.requires_grad and id(p) not in aux_ids]
    return main, aux


_COMPRESSAI_CONSTANTS = ("_offset", "_quantized_cdf", "_cdf_length", "scale_table", "scale_bound", "bound", "target")
"""Leaf names of the constant buffers that checkpoints written while the entropy models and GDN came from
compressai hold (the current modules keep constants out of their state dicts)."""


def _without_compressai_constants(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """``state`` less compressai's constant buffers that ``model`` does not have (older checkpoints)."""
    own = model.state_dict().keys()
    return {k: v for k, v in state.items() if k in own or k.rsplit(".", 1)[-1] not in _COMPRESSAI_CONSTANTS}


class _Distributed:
    """Rank/world bookkeeping for runs started with ``torchrun`` (single process otherwise)."""

    def __init__(self, device: str) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(device)
        if self.world > 1:
            backend = "nccl" if device.startswith("cuda") else "gloo"
            dist.init_process_group(backend)
            if device.startswith("cuda"):
                self.device = torch.device("cuda", self.local_rank)
                torch.cuda.set_device(self.device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def average(self, value: float) -> float:
        if self.world == 1:
            return value
        tensor = torch.tensor([value], device=self.device, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.item() / self.world

    def average_gradients(self, params: list[nn.Parameter]) -> None:
        if self.world == 1:
            return
        for param in params:
            if param.grad is not None:
                dist.all_reduce(param.grad)
                param.grad /= self.world

    def close(self) -> None:
        if self.world > 1:
            dist.destroy_process_group()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _reseed_worker(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    if info is not None and hasattr(info.dataset, "rng"):
        info.dataset.rng = np.random.default_rng(torch.initial_seed() % 2**32)


def load_checkpoint(path: Path) -> dict:
    """Load a training checkpoint written by :func:`fit` (tensors and plain data only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def fit(
    model: nn.Module,
    task: TrainingTask,
    train_set: Dataset,
    val_set: Dataset | None,
    config: TrainConfig,
) -> nn.Module:
    """Train ``model`` with ``task``'s loss; resumes from ``out_dir/checkpoint.pt`` when present."""
    if config.threads:
        torch.set_num_threads(config.threads)
    env = _Distributed(config.device)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _seed_everything(config.seed + env.rank)

    model.to(env.device)
    main_params, aux_params = _split_parameters(model)
    optimizer = torch.optim.Adam(main_params, lr=config.lr)
    aux_optimizer = torch.optim.Adam(aux_params, lr=config.aux_lr) if aux_params else None
    step = _resume(out_dir / CHECKPOINT_NAME, model, optimizer, aux_optimizer)
    if hasattr(train_set, "rng"):
        # seeded by the step too: a resumed run draws new samples instead of replaying its first ones
        train_set.rng = np.random.default_rng([config.seed, env.rank, step])

    trained = model
    if env.world > 1:
        device_ids = [env.device.index] if env.device.type == "cuda" else None
        trained = nn.parallel.DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)
    sampler = DistributedSampler(train_set, seed=config.seed) if env.world > 1 else None
    loader = DataLoader(
        train_set, batch_size=config.batch_size, sampler=sampler, shuffle=sampler is None, drop_last=True,
        num_workers=config.num_workers, worker_init_fn=_reseed_worker, pin_memory=env.device.type == "cuda",
    )
    val_loader = DataLoader(val_set, batch_size=config.val_batch_size) if val_set is not None and len(val_set) else None
    use_amp = config.amp and autocast_available(env.device)

    progress = tqdm(total=config.steps, initial=step, disable=not env.is_main, dynamic_ncols=True, unit="step")
    log_path = out_dir / LOG_NAME
    started = time.time()
    epoch = 0
    skipped = 0
    while step < config.steps:
        if sampler is not None:
            sampler.set_epoch(epoch)
        for batch in loader:
            if step >= config.steps:
                break
            batch = _to_device(batch, env.device)
            for group in optimizer.param_groups:
                group["lr"] = config.lr * learning_rate_factor(step, config)
            model.train()
            with torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=use_amp):
                metrics = task.training_step(trained, batch)
            if not torch.isfinite(metrics["loss"]):
                skipped += 1
                if skipped > config.max_skipped_steps:
                    raise FloatingPointError(f"{skipped} non-finite losses; last at step {step}: lower the learning rate")
                continue
            optimizer.zero_grad(set_to_none=True)
            metrics["loss"].backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(main_params, config.grad_clip)
            optimizer.step()
            if aux_optimizer is not None:
                aux_optimizer.zero_grad(set_to_none=True)
                aux_loss = model.aux_loss()
                aux_loss.backward()
                env.average_gradients(aux_params)
                aux_optimizer.step()
                metrics["aux_loss"] = aux_loss.detach()
            step += 1
            record = {k: env.average(float(v.detach())) for k, v in metrics.items()}
            progress.update(1)
            progress.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "aux_loss"})
            if env.is_main:
                record.update(step=step, lr=optimizer.param_groups[0]["lr"], elapsed_s=round(time.time() - started, 1))
                if step % 10 == 0 or step == config.steps:
                    _append_jsonl(log_path, record)
                if step % config.validate_every == 0 and val_loader is not None:
                    _validate(model, task, val_loader, log_path, step)
                if step % config.checkpoint_every == 0 or step == config.steps:
                    _save_checkpoint(out_dir / CHECKPOINT_NAME, model, optimizer, aux_optimizer, step, config)
        epoch += 1
    progress.close()
    if env.is_main and val_loader is not None:
        _validate(model, task, val_loader, log_path, step)
    env.close()
    return model


def _to_device(batch: Any, device: torch.device) -> Any:
    """A batch (a tensor, or a tuple/list of tensors such as images and labels) moved to ``device``."""
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(part, device) for part in batch)
    return batch.to(device, non_blocking=True)


def _validate(model: nn.Module, task: TrainingTask, loader: DataLoader, log_path: Path, step: int) -> None:
    model.eval()
    with torch.no_grad():
        metrics = task.validate(model, loader)
    _append_jsonl(log_path, {"step": step, **{f"val_{k}": v for k, v in metrics.items()}})
    tqdm.write(f"step {step} validation: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))


def _append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _save_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    aux_optimizer: torch.optim.Optimizer | None,
    step: int,
    config: TrainConfig,
) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "aux_optimizer": aux_optimizer.state_dict() if aux_optimizer is not None else None,
        "step": step,
        "config": asdict(config),
        "torch_rng": torch.get_rng_state(),
    }
    with atomic_output(path) as temporary:
        torch.save(state, temporary)


def _resume(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, aux_optimizer: torch.optim.Optimizer | None
) -> int:
    if not path.exists():
        return 0
    state = load_checkpoint(path)
    model.load_state_dict(_without_compressai_constants(state["model"], model))
    optimizer.load_state_dict(state["optimizer"])
    if aux_optimizer is not None and state.get("aux_optimizer") is not None:
        aux_optimizer.load_state_dict(state["aux_optimizer"])
    torch.set_rng_state(state["torch_rng"])
    tqdm.write(f"resumed from {path} at step {state['step']}")
    return int(state["step"])
