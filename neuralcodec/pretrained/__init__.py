"""Shipped pretrained weights and their registry (``models.json``), and the retired models (``retired.json``).

Every entry names its codec family, its safetensors file and that file's sha256, the architecture
config, the recipe that produced it and the numbers measured with it. Weights are safetensors only
(no pickle), and a file whose hash does not match the registry is refused.

Retired models are superseded ones kept only to decode files made with them: their entries stay (so
their files are recognized, compact codes included) but their weights are not in the package. They are
looked up by file name in the folders of ``NEURALCODEC_MODELS`` and, in a source checkout, in
``models-retired/`` at the repository root, and checked against the recorded sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from typing import TYPE_CHECKING

from neuralcodec.container import CompactModel
from neuralcodec.errors import InputError, ModelMismatchError, UnknownModelError
from neuralcodec.fileio import atomic_output

if TYPE_CHECKING:  # torch is imported where weights are read or written, so the registry stays light
    import torch

PRETRAINED_DIR = Path(__file__).resolve().parent
REGISTRY_PATH = PRETRAINED_DIR / "models.json"
RETIRED_PATH = PRETRAINED_DIR / "retired.json"
"""Models that shipped once and no longer do: registry entries plus ``retired`` (replaced_by, why, and
last_commit for weights kept only in the git history)."""
MODELS_ENV = "NEURALCODEC_MODELS"
"""Environment variable: folders (``os.pathsep``-separated) holding weights files of retired models."""
SOURCE_RETIRED_DIR = PRETRAINED_DIR.parents[1] / "models-retired"
"""Where a source checkout keeps the retired models' weights (absent from an installed wheel)."""
METADATA_KEY = "neuralcodec"
"""The safetensors metadata entry holding codec, model id and config as JSON."""
HASH_BYTES = 8
"""Length of the weights-hash prefix stored in every .ncd file."""


@dataclass(frozen=True)
class Retirement:
    """Why a model no longer ships, and where its weights are kept."""

    replaced_by: str
    why: str
    last_commit: str | None = None
    """Set when the weights are only in the git history (at ``neuralcodec/pretrained/<file>`` of this commit)."""


@dataclass(frozen=True)
class ModelInfo:
    """One model: its id, codec family, weights file and what is known about it."""

    model_id: str
    codec: str
    path: Path
    """The weights file: in the package for a shipped model; for a retired one, where it was found (where a
    source checkout keeps it when it was found nowhere)."""
    sha256: str
    config: dict
    description: str = ""
    recipe: dict = field(default_factory=dict)
    measured: dict = field(default_factory=dict)
    default_for: tuple[str, ...] = ()
    compact_code: int | None = None
    """Code of the model in compact (few-byte header) files, for models that code tiny payloads."""
    retired: Retirement | None = None

    @property
    def weights_hash(self) -> bytes:
        return bytes.fromhex(self.sha256)[:HASH_BYTES]


def _read_entries(path: Path, folder: Path) -> dict[str, ModelInfo]:
    """The entries of a registry file, their weights files taken in ``folder``."""
    if not path.exists():
        return {}
    entries = json.loads(path.read_text(encoding="utf-8"))
    return {
        model_id: ModelInfo(
            model_id=model_id,
            codec=entry["codec"],
            path=folder / entry["file"],
            sha256=entry["sha256"],
            config=entry.get("config", {}),
            description=entry.get("description", ""),
            recipe=entry.get("recipe", {}),
            measured=entry.get("measured", {}),
            default_for=tuple(entry.get("default_for", ())),
            compact_code=entry.get("compact_code"),
            retired=Retirement(**entry["retired"]) if "retired" in entry else None,
        )
        for model_id, entry in entries.items()
    }


@lru_cache(maxsize=1)
def _registry() -> dict[str, ModelInfo]:
    return _read_entries(REGISTRY_PATH, PRETRAINED_DIR)


@lru_cache(maxsize=1)
def _retired() -> dict[str, ModelInfo]:
    return _read_entries(RETIRED_PATH, SOURCE_RETIRED_DIR)


def _known() -> dict[str, ModelInfo]:
    """Shipped and retired models by id."""
    return {**_retired(), **_registry()}


def retired_model_dirs() -> list[Path]:
    """Where retired models' weights are looked for: the ``NEURALCODEC_MODELS`` folders, then
    ``models-retired/`` of a source checkout."""
    named = [Path(folder) for folder in os.environ.get(MODELS_ENV, "").split(os.pathsep) if folder]
    return [*named, SOURCE_RETIRED_DIR]


def _located(info: ModelInfo) -> ModelInfo:
    """``info`` with the path where its weights are (retired models: the first folder that has the file)."""
    if info.retired is None:
        return info
    for folder in retired_model_dirs():
        if (folder / info.path.name).is_file():
            return replace(info, path=folder / info.path.name)
    return info


def list_models() -> list[ModelInfo]:
    """Every shipped pretrained model."""
    return list(_registry().values())


def retired_models() -> list[ModelInfo]:
    """Every retired model, with the path of its weights where they were found."""
    return [_located(info) for info in _retired().values()]


def is_retired(model_id: str) -> bool:
    """Whether ``model_id`` names a retired model."""
    return model_id in _retired()


def get_model_info(model_id: str) -> ModelInfo:
    """The registry entry of ``model_id``, shipped or retired (UnknownModelError listing the known ids otherwise)."""
    info = _known().get(model_id)
    if info is None:
        known = ", ".join(sorted(_registry())) or "none"
        raise UnknownModelError(f"no pretrained model named {model_id!r} (shipped: {known})")
    return _located(info)


def retired_weights_hint(info: ModelInfo) -> str:
    """How to get the weights file of the retired model ``info``: a command or a place in the repository."""
    name = info.path.name
    if info.retired is not None and info.retired.last_commit is not None:
        return (f"run `git show {info.retired.last_commit}:neuralcodec/pretrained/{name} > {name}` in a clone of "
                f"the neuralcodec repository")
    return f"take models-retired/{name} from the neuralcodec source repository"


def default_model(codec: str) -> ModelInfo:
    """The model used when only the codec family is given."""
    for info in _registry().values():
        if codec in info.default_for:
            return info
    raise UnknownModelError(f"no pretrained model ships for codec {codec!r}; train one with `codec train {codec}`")


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class LoadedWeights:
    """Tensors of a weights file plus the metadata stored in it."""

    tensors: dict[str, "torch.Tensor"]
    codec: str
    model_id: str
    config: dict
    sha256: str

    @property
    def weights_hash(self) -> bytes:
        return bytes.fromhex(self.sha256)[:HASH_BYTES]

    @property
    def compact_code(self) -> int | None:
        """The code these weights have in compact files: registered models that have one, unchanged weights only."""
        info = _known().get(self.model_id)
        return info.compact_code if info is not None and info.sha256 == self.sha256 else None


def compact_models() -> dict[int, CompactModel]:
    """Shipped and retired models that have a compact-file code, by code (what ``container.read`` resolves
    codes with: a retired model's file is still recognized, so decoding it can say how to get the weights)."""
    return {m.compact_code: CompactModel(m.codec, m.model_id, m.weights_hash)
            for m in _known().values() if m.compact_code is not None}


def load_weights_file(path: str | Path) -> LoadedWeights:
    """Read a safetensors weights file written by :func:`save_weights` (a shipped or a user's model)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"weights file not found: {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = _neuralcodec_metadata(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as error:  # safetensors raises several types for malformed files
        raise InputError(f"{path} is not a readable safetensors weights file ({error})") from error
    missing = [key for key in ("codec", "model_id", "config") if key not in metadata]
    if missing:
        raise InputError(f"{path} lacks neuralcodec metadata ({', '.join(missing)}); was it written by save_weights?")
    return LoadedWeights(tensors, metadata["codec"], metadata["model_id"], json.loads(metadata["config"]), sha256_of_file(path))


def _neuralcodec_metadata(stored: dict[str, str]) -> dict[str, str]:
    """The codec/model_id/config entries: one JSON entry (current files) or three entries (earlier files)."""
    if METADATA_KEY not in stored:
        return stored
    try:
        entries = json.loads(stored[METADATA_KEY])
        return {"codec": entries["codec"], "model_id": entries["model_id"], "config": json.dumps(entries["config"])}
    except (ValueError, KeyError, TypeError):
        return {}


def names_weights_file(model: str) -> bool:
    """Whether ``model`` (as a user gives it to ``--model`` / ``--init-from``) is a weights file, not a shipped id."""
    return model.endswith(".safetensors") or Path(model).is_file()


def load_named_weights(model: str, codec: str | None = None) -> LoadedWeights:
    """The weights a user names: a shipped model id or a path to a .safetensors file; InputError when
    ``codec`` is given and they belong to another codec family."""
    weights = load_weights_file(model) if names_weights_file(model) else load_pretrained(model)
    if codec is not None and weights.codec != codec:
        raise InputError(f"model {weights.model_id!r} is a {weights.codec} model, not {codec}")
    return weights


def load_pretrained(model_id: str) -> LoadedWeights:
    """Load a shipped or retired model, checking its file against the registry's sha256."""
    info = get_model_info(model_id)
    if not info.path.is_file():
        if info.retired is not None:
            raise UnknownModelError(
                f"model {model_id!r} is retired (replaced by {info.retired.replaced_by!r}) and its weights are not "
                f"installed: {retired_weights_hint(info)}, then put the file in a folder named by {MODELS_ENV} or "
                f"pass it with --model"
            )
        raise UnknownModelError(f"weights of {model_id!r} are missing from the installation ({info.path})")
    weights = load_weights_file(info.path)
    if weights.sha256 != info.sha256:
        raise ModelMismatchError(
            f"weights file {info.path} has sha256 {weights.sha256[:16]}..., the registry expects {info.sha256[:16]}..."
        )
    return weights


def save_weights(
    path: str | Path, tensors: dict[str, "torch.Tensor"], codec: str, model_id: str, config: dict, half: bool = True
) -> str:
    """Write ``tensors`` (floating ones as fp16 when ``half``) with neuralcodec metadata; returns sha256."""
    from safetensors.torch import save_file

    prepared = {
        key: (value.detach().half() if half and value.is_floating_point() else value.detach()).contiguous().cpu()
        for key, value in tensors.items()
    }
    # One metadata entry: safetensors writes several in a per-process random order, so the file's bytes
    # (and the sha256 the registry records) would change with every export of the same weights.
    metadata = {METADATA_KEY: json.dumps({"codec": codec, "model_id": model_id, "config": config}, sort_keys=True)}
    with atomic_output(Path(path)) as temporary:
        save_file(prepared, str(temporary), metadata=metadata)
    return sha256_of_file(Path(path))
