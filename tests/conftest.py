"""Shared fixtures: a tiny randomly initialised image codec exported like a real one, and sample images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small (N=16, M=24) image hyperprior with random weights, exported to safetensors."""
    from neuralcodec.codecs.image.model import HyperpriorConfig, ImageHyperprior
    from neuralcodec.codecs.image.export import export_image_hyperprior

    torch.manual_seed(0)
    model = ImageHyperprior(HyperpriorConfig(n=16, m=24, lambdas=(0.01, 0.05)))
    with torch.no_grad():  # make level 1 a finer quantizer than level 0, as training would
        model.latent_gain.log_gain[1] += 1.5
        model.latent_gain.log_inverse[1] -= 1.5
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    export_image_hyperprior(model, path, model_id="tiny-test")
    return path


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A natural photo crop (scikit-image's astronaut), 96x136 so that padding is exercised."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[40:136, 100:236])


@pytest.fixture
def photo_png(tmp_path: Path, photo: np.ndarray) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    return path


@pytest.fixture
def image_folder(tmp_path: Path, photo: np.ndarray) -> Path:
    """Four shifted copies of :func:`photo` as PNGs in a folder (a tiny training set)."""
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(4):
        Image.fromarray(np.roll(photo, 17 * index, axis=1)).save(folder / f"{index}.png")
    return folder


def require_shared(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test when the datasets are not beside the checkout."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path
