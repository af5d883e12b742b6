"""The checkerboard split of a latent into two coding passes (He et al., "Checkerboard Context Model
for Efficient Learned Image Compression", 2021)."""

from __future__ import annotations

import torch


def anchor_mask(height: int, width: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(1, 1, H, W) checkerboard: 1 where ``(i + j)`` is even (anchors, decoded first), 0 elsewhere."""
    rows = torch.arange(height, device=device)[:, None]
    cols = torch.arange(width, device=device)[None, :]
    return ((rows + cols) % 2 == 0).to(dtype)[None, None]
