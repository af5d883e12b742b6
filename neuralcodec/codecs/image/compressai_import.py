"""Import a CompressAI hyperprior checkpoint as a neuralcodec image model (``codec import-compressai``).

Two CompressAI architectures map onto :class:`ImageHyperprior` exactly: ``bmshj2018-hyperprior`` (scale
hyperprior, ``hyper_layout="bmshj2018"``) and ``mbt2018-mean`` (mean-scale hyperprior,
``hyper_layout="mbt2018"``). The checkpoint is read with ``torch.load(weights_only=True)`` and its keys
are mapped; CompressAI itself is never imported. The result is a single-rate model (one gain level of
gain 1, so ``--quality`` is 1 or absent) whose weights are kept in float32, so that its ``forward``
equals CompressAI's; its coding tables are built as for any exported model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from neuralcodec.codecs.image.export import export_image_hyperprior
from neuralcodec.codecs.image.model import HyperpriorConfig, ImageHyperprior
from neuralcodec.entropy.tables import SCALE_MIN
from neuralcodec.errors import InputError
from neuralcodec.fileio import ensure_not_same_file


@dataclass(frozen=True)
class Architecture:
    """How a CompressAI architecture is built here."""

    mean_scale: bool
    hyper_layout: str


ARCHITECTURES = {
    "bmshj2018-hyperprior": Architecture(mean_scale=False, hyper_layout="bmshj2018"),
    "mbt2018-mean": Architecture(mean_scale=True, hyper_layout="mbt2018"),
}
"""The CompressAI architectures (``compressai.zoo`` names) that can be imported."""

DEFAULT_LAMBDA = 0.013
"""Rate-distortion trade-off recorded when none is given (CompressAI's MSE quality 4); only latent
refinement (``--refine``) uses it."""

_COMPRESSAI_ONLY = re.compile(
    r"(lower_bound(_scale)?\.bound|(^|\.)(target|_offset|_quantized_cdf|_cdf_length|scale_table|scale_bound))$")
"""CompressAI buffers that are constants or its own coding tables (ours are built from the parameters)."""
_OLD_PRIOR_NAMES = re.compile(r"^entropy_bottleneck\._(biases|matrices|factors)\.?(\d+)$|"
                              r"^entropy_bottleneck\._(bias|matrix|factor)(\d+)$")
_PLURAL = {"bias": "biases", "matrix": "matrices", "factor": "factors"}
_CONTEXT_MODELS = ("context_prediction.", "entropy_parameters.")
_OUR_ONLY = ("latent_gain.", "hyper_gain.", "entropy_bottleneck._table_")


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in a CompressAI checkpoint: ``examples/train.py``'s (under ``"state_dict"``) or a bare
    one (``torch.save(model.state_dict(), path)``), with DataParallel's ``module.`` prefixes removed."""
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for foreign or pickled-object files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path} is not a weights-only torch checkpoint ({reason}); save the model's "
                         "state_dict() rather than the model object") from None
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path} holds no state dict (a dict of tensors, or one under 'state_dict')")
    return {key.removeprefix("module."): value for key, value in state.items()}


def _our_key(key: str, arch: str) -> str | None:
    """``key`` of a CompressAI state dict as named here; None for CompressAI's own constants and tables."""
    if _COMPRESSAI_ONLY.search(key):
        return None
    old = _OLD_PRIOR_NAMES.match(key)
    if old:
        kind, index = (old[1], old[2]) if old[1] else (_PLURAL[old[3]], old[4])
        return f"entropy_bottleneck.{kind}.{index}"
    analysis = re.match(r"^h_a\.(\d+)\.(.+)$", key)
    if analysis and ARCHITECTURES[arch].hyper_layout == "bmshj2018":  # our h_a starts with |y|
        return f"h_a.{int(analysis[1]) + 1}.{analysis[2]}"
    return key


def _width(state: dict[str, torch.Tensor], key: str) -> int:
    if key not in state or state[key].ndim != 4:
        raise InputError(f"the checkpoint is not a CompressAI image hyperprior (no 4-D tensor {key!r})")
    return int(state[key].shape[0])


def convert_state_dict(state: dict[str, torch.Tensor], arch: str, lmbda: float = DEFAULT_LAMBDA) -> ImageHyperprior:
    """The :class:`ImageHyperprior` holding the weights of a CompressAI ``arch`` state dict (in eval mode).

    InputError when the checkpoint is not of that architecture: keys missing or extra (context models,
    another architecture) or tensors of other shapes.
    """
    if arch not in ARCHITECTURES:
        raise InputError(f"cannot import CompressAI architecture {arch!r} (supported: {', '.join(ARCHITECTURES)})")
    if not lmbda > 0:
        raise InputError(f"the rate-distortion trade-off must be positive, got {lmbda}")
    bound = state.get("gaussian_conditional.scale_bound")
    if bound is not None and not torch.allclose(bound.double(), torch.tensor(SCALE_MIN, dtype=torch.float64)):
        raise InputError(f"the checkpoint's Gaussian scale bound is {bound.tolist()}; only {SCALE_MIN} can be imported")
    mapped = {ours: value for key, value in state.items() if (ours := _our_key(key, arch)) is not None}
    config = HyperpriorConfig(n=_width(mapped, "g_a.0.weight"), m=_width(mapped, "g_a.6.weight"),
                              mean_scale=ARCHITECTURES[arch].mean_scale, lambdas=(float(lmbda),),
                              hyper_layout=ARCHITECTURES[arch].hyper_layout)
    model = ImageHyperprior(config).eval()
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith(_OUR_ONLY)}
    extra = sorted(set(mapped) - set(expected))
    if extra:
        context = any(key.startswith(_CONTEXT_MODELS) for key in extra)
        hint = ("; autoregressive context models (mbt2018, cheng2020...) are not supported" if context
                else f"; is it another architecture than {arch}?")
        raise InputError(f"the checkpoint has {len(extra)} tensors that {arch} lacks, e.g. {extra[0]!r}{hint}")
    missing = sorted(set(expected) - set(mapped))
    if missing:
        raise InputError(f"the checkpoint lacks {len(missing)} tensors of {arch}, e.g. {missing[0]!r}")
    for key, value in expected.items():
        if mapped[key].shape != value.shape:
            raise InputError(f"{key} has shape {tuple(mapped[key].shape)}, {arch} with N={config.n}, "
                             f"M={config.m} has {tuple(value.shape)}: is it another architecture?")
    model.load_state_dict(mapped, strict=False)
    return model


def import_compressai(checkpoint: str | Path, arch: str, out: str | Path, lmbda: float | None = None) -> dict:
    """Convert a CompressAI checkpoint into a weights file at ``out`` (model id: its stem), which
    ``codec encode/decode --model`` and ``codec eval`` take; returns what was written. ``lmbda``: the
    trade-off the model was trained for (None: :data:`DEFAULT_LAMBDA`)."""
    checkpoint, out = Path(checkpoint), Path(out)
    if out.suffix != ".safetensors":
        raise InputError(f"the output must be a .safetensors file, got {out}")
    ensure_not_same_file(checkpoint, out)
    model = convert_state_dict(read_checkpoint(checkpoint), arch, DEFAULT_LAMBDA if lmbda is None else lmbda)
    sha256 = export_image_hyperprior(model, out, model_id=out.stem, half=False)
    return {"output": str(out), "model_id": out.stem, "arch": arch, "n": model.config.n, "m": model.config.m,
            "sha256": sha256}
