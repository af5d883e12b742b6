"""`codec train lossless-pc`: learn a Chow-Liu tree and fit an HCLT by maximum likelihood.

Structure first (mutual information on up to ``structure_images`` training images), then Adam on the
exact log-likelihood through the shared training loop (its checkpoints, log, validation, DDP).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from neuralcodec.codecs.lossless.chow_liu import RootedTree, chow_liu_tree
from neuralcodec.codecs.lossless.codec import LosslessCircuitCodec, read_images
from neuralcodec.codecs.lossless.hclt import HCLTConfig, HiddenChowLiuTree
from neuralcodec.errors import InputError
from neuralcodec.limits import Limits
from neuralcodec.pretrained import save_weights
from neuralcodec.train.loop import CHECKPOINT_NAME, TrainConfig, fit

TREE_NAME = "tree.json"
"""The learned structure, written beside the checkpoint so a resumed run rebuilds the same model."""


class FlatImages(Dataset):
    """Images (N, H, W) uint8 served as flat int64 pixel vectors."""

    def __init__(self, images: np.ndarray) -> None:
        self.pixels = torch.from_numpy(np.ascontiguousarray(images).reshape(len(images), -1))

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.pixels[index].long()


class LikelihoodTask:
    """Minimize bits per dimension (exact negative log2-likelihood per pixel)."""

    def training_step(self, model: nn.Module, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        bpd = model(batch)["bpd"].mean()
        return {"loss": bpd, "bpd": bpd.detach()}

    def validate(self, model: nn.Module, loader: DataLoader) -> dict[str, float]:
        device = next(model.parameters()).device
        total, count = 0.0, 0
        for batch in loader:
            total += float(model(batch.to(device))["bpd"].sum())
            count += len(batch)
        return {"bpd": total / max(count, 1)}


def split_images(images: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic random split into (train, validation)."""
    if not 0 <= val_fraction < 1:
        raise InputError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(images))
    held = int(round(val_fraction * len(images)))
    return images[order[held:]], images[order[:held]]


def build_model(train: np.ndarray, hidden: int, seed: int, structure_images: int = 20000) -> HiddenChowLiuTree:
    """Chow-Liu structure from (a sample of) ``train`` and a data-initialized HCLT on it."""
    count, height, width = train.shape
    generator = torch.Generator().manual_seed(seed)
    sample = torch.from_numpy(train.reshape(count, -1)[:structure_images].astype(np.int64))
    tree = chow_liu_tree(sample, width)
    model = HiddenChowLiuTree(HCLTConfig(height=height, width=width, hidden=hidden), tree)
    model.initialize(sample, generator)
    return model


def train_lossless_pc(data: str | Path, config: TrainConfig, hidden: int = 32,
                      val_fraction: float = 0.05) -> HiddenChowLiuTree:
    """Train (or resume) an HCLT on the images of ``data`` (an IDX file or a folder of same-size images);
    always in float32, whatever ``config.amp`` says."""
    images, _, _ = read_images(Path(data), Limits())
    if len(images) < 2:
        raise InputError(f"{data} holds {len(images)} image(s); training needs many")
    train, val = split_images(images, val_fraction, config.seed)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tree_path = out_dir / TREE_NAME
    if (out_dir / CHECKPOINT_NAME).exists():  # resume: rebuild the same structure, fit loads the parameters
        if not tree_path.exists():
            raise InputError(f"{out_dir} has a checkpoint but no {TREE_NAME}: resume needs both (or use a new --out)")
        tree_arrays = json.loads(tree_path.read_text())
        tree = RootedTree(order=np.array(tree_arrays["order"]), parent=np.array(tree_arrays["parent"]))
        model = HiddenChowLiuTree(HCLTConfig(height=images.shape[1], width=images.shape[2], hidden=hidden), tree)
    else:
        model = build_model(train, hidden, config.seed)
        tree_path.write_text(json.dumps({"order": model.order.tolist(), "parent": model.parent.tolist()}))
    (out_dir / "model_config.json").write_text(json.dumps(model.config.to_dict(), indent=2))
    float32 = replace(config, amp=False)  # the circuit's log-space sums need float32
    return fit(model, LikelihoodTask(), FlatImages(train), FlatImages(val) if len(val) else None, float32)


def export_lossless_pc(model: HiddenChowLiuTree, path: str | Path, model_id: str) -> str:
    """Write the shippable weights (fp16 probabilities + tree); returns the file's sha256."""
    tensors = LosslessCircuitCodec.export_tensors(model)
    return save_weights(path, tensors, codec=LosslessCircuitCodec.name, model_id=model_id,
                        config=model.config.to_dict(), half=False)
