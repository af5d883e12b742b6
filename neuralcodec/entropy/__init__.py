"""The shared entropy-coding backend (constriction ANS) and its training-time torch models.

``tables`` and ``coder`` need only numpy and constriction; the torch side (``FactorizedPrior``,
``GaussianConditionalPrior``) is imported on first use so that importing the coder stays fast.
"""

from __future__ import annotations

from typing import Any

from .coder import SYMBOL_LIMIT, SymbolDecoder, SymbolEncoder
from .tables import (
    PRECISION,
    SCALE_TABLE,
    TableSet,
    gaussian_scale_tables,
    laplace_scale_tables,
    cumulative_counts,
    quantize_rows,
    scale_to_index,
)

_TORCH_MODELS = ("FactorizedPrior", "GaussianConditionalPrior")

__all__ = [
    "PRECISION",
    "SCALE_TABLE",
    "SYMBOL_LIMIT",
    "SymbolDecoder",
    "SymbolEncoder",
    "TableSet",
    "gaussian_scale_tables",
    "laplace_scale_tables",
    "cumulative_counts",
    "quantize_rows",
    "scale_to_index",
    *_TORCH_MODELS,
]


def __getattr__(name: str) -> Any:
    if name in _TORCH_MODELS:
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
