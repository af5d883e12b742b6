"""`codec train lossless-image`: fit the colour and grey circuits of the lossless image codec.

Samples: the circuit variables (contexts and residuals, ``image_model.image_variables``) of randomly
chosen pixels of every training photo, and of its grey version (Pillow's L conversion). Loss: the exact
conditional bits per subpixel of both circuits (Adam through the shared training loop).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from neuralcodec.codecs.lossless.hclt import HiddenChowLiuTree
from neuralcodec.codecs.lossless.image_model import GROUPS, bits_per_subpixel, image_variables, new_circuit
from neuralcodec.codecs.lossless.planes import SCHEMES, ContextScheme
from neuralcodec.errors import InputError
from neuralcodec.media.images import LOSSLESS_SUFFIXES, opened_image
from neuralcodec.pretrained import save_weights
from neuralcodec.train.loop import TrainConfig, fit

CODEC_NAME = "lossless-image"


class ImageCircuits(nn.Module):
    """The circuits of one model, by group name (see ``image_model.GROUPS``)."""

    def __init__(self, hidden: int, contexts: str) -> None:
        super().__init__()
        self.hidden = hidden
        self.contexts = contexts
        self.circuits = nn.ModuleDict({name: new_circuit(planes, hidden) for name, planes in GROUPS.items()})

    def forward(self, batch: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Mean conditional bits per subpixel of each group's variables (``batch``: one tensor per group,
        in ``GROUPS`` order)."""
        return {name: bits_per_subpixel(self.circuits[name], rows).mean() for name, rows in zip(GROUPS, batch)}


class VariableSamples(Dataset):
    """Rows of circuit variables of every group (as many as the smallest group has), in ``GROUPS`` order."""

    def __init__(self, samples: dict[str, np.ndarray]) -> None:
        self.samples = [torch.from_numpy(samples[name]) for name in GROUPS]

    def __len__(self) -> int:
        return min(len(rows) for rows in self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(rows[index] for rows in self.samples)


class ConditionalBitsTask:
    """Minimize the summed bits per subpixel of the colour and grey circuits."""

    def training_step(self, model: nn.Module, batch: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        bits = model(batch)
        loss = sum(bits.values())
        return {"loss": loss, **{f"bpsp_{name}": value.detach() for name, value in bits.items()}}

    def validate(self, model: nn.Module, loader: DataLoader) -> dict[str, float]:
        totals: dict[str, float] = {}
        count = 0
        for batch in loader:
            for name, value in model(batch).items():
                totals[name] = totals.get(name, 0.0) + float(value) * len(batch[0])
            count += len(batch[0])
        return {f"bpsp_{name}": total / max(count, 1) for name, total in totals.items()}


def photo_files(data: Path) -> list[Path]:
    """The lossless image files under ``data`` (recursively), sorted."""
    files = sorted(p for p in data.rglob("*") if p.is_file() and p.suffix.lower() in LOSSLESS_SUFFIXES)
    if not files:
        raise InputError(f"{data} holds no lossless image files ({', '.join(LOSSLESS_SUFFIXES)})")
    return files


def photo_samples(files: list[Path], per_image: int, seed: int, scheme: ContextScheme) -> dict[str, np.ndarray]:
    """Circuit variables (contexts by ``scheme``) of ``per_image`` random pixels of each photo (colour) and
    of its grey version."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[np.ndarray]] = {name: [] for name in GROUPS}
    for path in files:
        with opened_image(path) as image:
            rgb = np.asarray(image.convert("RGB"))
            grey = np.asarray(image.convert("L"))[:, :, None]
        for name, pixels in (("colour", rgb), ("grey", grey)):
            variables = image_variables(pixels, scheme)
            rows[name].append(variables[rng.choice(len(variables), min(per_image, len(variables)), replace=False)])
    return {name: rng.permutation(np.concatenate(parts)).astype(np.int64) for name, parts in rows.items()}


def held_out(files: list[Path], every: int = 15) -> tuple[list[Path], list[Path]]:
    """(training files, validation files): every ``every``-th file (from the 8th) is held out."""
    held = [p for i, p in enumerate(files) if i % every == every // 2]
    return [p for p in files if p not in held], held


def train_lossless_image(data: str | Path, config: TrainConfig, hidden: int, per_image: int,
                         contexts: str) -> ImageCircuits:
    """Train both circuits on the photos under ``data`` with the context scheme ``contexts`` (float32;
    validation on the held-out photos)."""
    if contexts not in SCHEMES:
        raise InputError(f"unknown context scheme {contexts!r}; choose from {', '.join(SCHEMES)}")
    train_files, val_files = held_out(photo_files(Path(data)))
    train = photo_samples(train_files, per_image, config.seed, SCHEMES[contexts])
    val = photo_samples(val_files, per_image // 4, config.seed + 1, SCHEMES[contexts]) if val_files else None
    model = ImageCircuits(hidden, contexts)
    generator = torch.Generator().manual_seed(config.seed)
    for name, circuit in model.circuits.items():
        circuit.initialize(torch.from_numpy(train[name][:200_000]), generator)
    return fit(model, ConditionalBitsTask(), VariableSamples(train), VariableSamples(val) if val else None,
               config)


def export_tensors(circuits: dict[str, HiddenChowLiuTree]) -> dict[str, torch.Tensor]:
    """fp16 probabilities of every circuit, named ``GROUP.root``, ``GROUP.transition``, ``GROUP.emission``."""
    tensors = {}
    for name, circuit in circuits.items():
        for part, value in zip(("root", "transition", "emission"), circuit.probabilities()):
            tensors[f"{name}.{part}"] = value.detach().cpu().half()
    return tensors


def export_lossless_image(model: ImageCircuits, path: str | Path, model_id: str) -> str:
    """Write the shippable weights; returns the file's sha256."""
    return save_weights(path, export_tensors(dict(model.circuits.items())), codec=CODEC_NAME, model_id=model_id,
                        config={"hidden": model.hidden, "contexts": model.contexts}, half=False)
