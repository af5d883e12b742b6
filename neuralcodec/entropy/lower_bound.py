"""``max(x, bound)`` whose gradient still moves values that sit below the bound upwards.

With the plain maximum, a value stuck under the bound gets no gradient and can never leave; here the
gradient passes wherever ``x >= bound`` or wherever it would increase ``x`` (Ballé et al.'s
``lower_bound`` op in tensorflow-compression).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class _LowerBoundFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor, bound: Tensor) -> Tensor:
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None]:
        x, bound = ctx.saved_tensors
        return grad * ((x >= bound) | (grad < 0)), None


class LowerBound(nn.Module):
    """``max(x, bound)`` with the pass-through gradient above; ``bound`` is a float32 constant (a buffer
    that follows ``.to()``, kept out of the state dict)."""

    bound: Tensor

    def __init__(self, bound: float) -> None:
        super().__init__()
        self.register_buffer("bound", torch.tensor([float(bound)], dtype=torch.float32), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return _LowerBoundFunction.apply(x, self.bound)
