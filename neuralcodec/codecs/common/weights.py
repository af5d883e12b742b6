"""Moving torch models in and out of weights files: what is stored, how it is restored."""

from __future__ import annotations

from typing import TypeVar

import torch

from neuralcodec.errors import InputError
from neuralcodec.pretrained import LoadedWeights

ModelT = TypeVar("ModelT", bound=torch.nn.Module)


def restore_model(model: ModelT, weights: LoadedWeights) -> ModelT:
    """Load ``weights`` (fp16 tensors as float32) into ``model``; InputError when tensors are missing."""
    state = {k: v.float() if v.is_floating_point() else v for k, v in weights.tensors.items()}
    model.load_state_dict(state, strict=False)
    missing = [k for k in model.state_dict() if k not in state]
    if missing:
        raise InputError(f"weights of {weights.model_id!r} lack {len(missing)} tensors, e.g. {missing[0]}")
    return model


def rounded_to_fp16(model: ModelT) -> ModelT:
    """``model`` on the CPU in eval mode, its weights rounded to fp16 in place (kept as float32), so that
    coding tables built from it are built from exactly the weights that are shipped."""
    model = model.cpu().eval()
    model.half().float()
    return model
