"""Training data: random crops from a folder of images, held in memory as uint8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from neuralcodec.errors import InputError
from neuralcodec.media.images import read_rgb


def _half_size(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((width // 2, height // 2), Image.BICUBIC))


class RandomCropDataset(Dataset):
    """Random ``crop``x``crop`` patches with random flips, as float tensors in [0, 1].

    Images larger than ``2*downscale_above`` pixels on their short side are also added at half size:
    high-resolution photos then contribute Kodak-like detail density as well as their own.
    ``samples_per_epoch`` sets the nominal length (crops are drawn at random each time).
    """

    def __init__(
        self,
        files: list[Path],
        crop: int = 256,
        samples_per_epoch: int = 10_000,
        downscale_above: int = 384,
        seed: int = 0,
    ) -> None:
        self.crop = crop
        self.samples_per_epoch = samples_per_epoch
        self.images: list[np.ndarray] = []
        for path in files:
            image = read_rgb(path)
            if min(image.shape[:2]) >= 2 * downscale_above:
                self.images.append(_half_size(image))
            self.images.append(image)
        self.images = [im for im in self.images if min(im.shape[:2]) >= crop]
        if not self.images:
            raise InputError(f"no training image is at least {crop}x{crop} pixels")
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> torch.Tensor:
        image = self.images[self.rng.integers(len(self.images))]
        top = self.rng.integers(image.shape[0] - self.crop + 1)
        left = self.rng.integers(image.shape[1] - self.crop + 1)
        patch = image[top : top + self.crop, left : left + self.crop]
        if self.rng.random() < 0.5:
            patch = patch[:, ::-1]
        if self.rng.random() < 0.5:
            patch = patch[::-1]
        return torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1).float().div_(255.0)


class CenterCropDataset(Dataset):
    """Deterministic center crops (validation)."""

    def __init__(self, files: list[Path], crop: int = 256) -> None:
        self.patches = []
        for path in files:
            image = read_rgb(path)
            height, width = image.shape[:2]
            size = min(crop, height, width) // 64 * 64
            if size == 0:
                continue
            top, left = (height - size) // 2, (width - size) // 2
            self.patches.append(image[top : top + size, left : left + size])

    def __len__(self) -> int:
        return len(self.patches)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.patches[index])).permute(2, 0, 1).float() / 255.0


class WholeImageDataset(Dataset):
    """Whole images of one common size (e.g. aligned faces), with random horizontal flips when ``flip``;
    the training task pads them to the model's size multiple and scores only the real pixels."""

    def __init__(self, files: list[Path], flip: bool = True, seed: int = 0) -> None:
        self.images = [read_rgb(path) for path in files]
        sizes = {image.shape for image in self.images}
        if len(sizes) != 1:
            raise InputError(f"whole-image training needs images of one size; found {sorted(sizes)[:3]}")
        self.flip = flip
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = self.images[index]
        if self.flip and self.rng.random() < 0.5:
            image = image[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


def split_files(files: list[Path], val_fraction: float) -> tuple[list[Path], list[Path]]:
    """Deterministic train/validation split: every k-th file goes to validation."""
    if val_fraction <= 0 or len(files) < 2:
        return files, []
    step = max(2, round(1 / val_fraction))
    val = files[step // 2 :: step]
    return [f for f in files if f not in val], val
