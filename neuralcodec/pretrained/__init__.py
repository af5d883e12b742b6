"""Shipped pretrained weights and their registry (``models.json``).

Every entry names its codec family, its safetensors file and that file's sha256, the architecture
config, the recipe that produced it and the numbers measured with it. Weights are safetensors only
(no pickle), and a file whose hash does not match the registry is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
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
"""Models that shipped once and were removed for space: id -> file, sha256, replaced_by, last_commit."""
METADATA_KEY = "neuralcodec"
"""The safetensors metadata entry holding codec, model id and config as JSON."""
HASH_BYTES = 8
"""Length of the weights-hash prefix stored in every .ncd file."""


@dataclass(frozen=True)
class ModelInfo:
    """One model: its id, codec family, weights file and what is known about it."""

    model_id: str
    codec: str
    path: Path
    sha256: str
    config: dict
    description: str = ""
    recipe: dict = field(default_factory=dict)
    measured: dict = field(default_factory=dict)
    default_for: tuple[str, ...] = ()
    compact_code: int | None = None
    """Code of the model in compact (few-byte header) files, for models that code tiny payloads."""

    @property
    def weights_hash(self) -> bytes:
        return bytes.fromhex(self.sha256)[:HASH_BYTES]


@lru_cache(maxsize=1)
def _registry() -> dict[str, ModelInfo]:
    if not REGISTRY_PATH.exists():
        return {}
    entries = json.loads(REGISTRY_PATH.read_text(encoding="utf-8"))
    return {
        model_id: ModelInfo(
            model_id=model_id,
            codec=entry["codec"],
            path=PRETRAINED_DIR / entry["file"],
            sha256=entry["sha256"],
            config=entry["config"],
            description=entry.get("description", ""),
            recipe=entry.get("recipe", {}),
            measured=entry.get("measured", {}),
            default_for=tuple(entry.get("default_for", ())),
            compact_code=entry.get("compact_code"),
        )
        for model_id, entry in entries.items()
    }


@lru_cache(maxsize=1)
def retired_models() -> dict[str, dict]:
    """Models no longer shipped, with the last commit that has their weights file."""
    if not RETIRED_PATH.exists():
        return {}
    return json.loads(RETIRED_PATH.read_text(encoding="utf-8"))


def list_models() -> list[ModelInfo]:
    """Every shipped pretrained model."""
    return list(_registry().values())


def get_model_info(model_id: str) -> ModelInfo:
    """The registry entry of ``model_id`` (UnknownModelError listing the known ids otherwise)."""
    registry = _registry()
    if model_id not in registry:
        retired = retired_models().get(model_id)
        if retired is not None:
            raise UnknownModelError(
                f"model {model_id!r} is no longer shipped (replaced by {retired['replaced_by']!r}); to decode its "
                f"files, get its weights with `git show {retired['last_commit']}:neuralcodec/pretrained/"
                f"{retired['file']} > {retired['file']}` in the neuralcodec repository and pass that file as --model"
            )
        known = ", ".join(sorted(registry)) or "none"
        raise UnknownModelError(f"no pretrained model named {model_id!r} (shipped: {known})")
    return registry[model_id]


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
        """The code these weights have in compact files: shipped models that have one, unchanged weights only."""
        info = _registry().get(self.model_id)
        return info.compact_code if info is not None and info.sha256 == self.sha256 else None


def compact_models() -> dict[int, CompactModel]:
    """Shipped models that have a compact-file code, by code (what ``container.read`` resolves codes with)."""
    return {m.compact_code: CompactModel(m.codec, m.model_id, m.weights_hash)
            for m in list_models() if m.compact_code is not None}


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
    """Load a shipped model, checking its file against the registry's sha256."""
    info = get_model_info(model_id)
    if not info.path.is_file():
        raise UnknownModelError(f"weights of {model_id!r} are missing from the installation ({info.path})")
    weights = load_weights_file(info.path)
    if weights.sha256 != info.sha256:
        raise ModelMismatchError(
            f"weights file {info.path.name} has sha256 {weights.sha256[:16]}..., the registry expects {info.sha256[:16]}..."
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
