"""Hidden Chow-Liu Tree (HCLT): a tractable probabilistic circuit over the pixels of fixed-size images.

Every pixel ``x_i`` gets a latent ``z_i`` with ``hidden`` states; the latents follow the Chow-Liu tree
of the pixels (root prior ``p(z_root)``, one ``hidden x hidden`` transition ``p(z_child | z_parent)``
per edge) and every pixel is emitted from its own latent by a ``categories``-way categorical
``p(x_i | z_i)`` (Liu, Mandt & Van den Broeck, "Lossless Compression with Probabilistic Circuits",
ICLR 2022). The circuit is smooth, decomposable and structured, so the likelihood of a full image,
and the marginal of any subset of pixels, is one upward pass over the tree.

Training maximizes the exact log-likelihood (Adam on unnormalized log-parameters, in log space);
``neuralcodec.codecs.lossless.coding`` turns the same parameters into exact, deterministic conditionals.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from neuralcodec.codecs.lossless.chow_liu import RootedTree
from neuralcodec.errors import InputError


@dataclass(frozen=True)
class HCLTConfig:
    """Shape of an HCLT: images ``height x width`` with ``categories`` values, latents with ``hidden`` states."""

    height: int = 28
    width: int = 28
    hidden: int = 32
    categories: int = 256

    def __post_init__(self) -> None:
        if min(self.height, self.width) < 1 or self.height * self.width > 1 << 16:
            raise InputError(f"image size {self.height}x{self.width} must have 1..65536 pixels")
        if not 1 <= self.hidden <= 1024 or not 2 <= self.categories <= 1 << 16:
            raise InputError(f"hidden={self.hidden} must be in 1..1024 and categories={self.categories} in 2..65536")

    @property
    def pixels(self) -> int:
        return self.height * self.width

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "HCLTConfig":
        return cls(**{k: int(data[k]) for k in ("height", "width", "hidden", "categories")})


class HiddenChowLiuTree(nn.Module):
    """The HCLT of ``tree`` (see module docstring); parameters are unnormalized log-probabilities."""

    def __init__(self, config: HCLTConfig, tree: RootedTree) -> None:
        super().__init__()
        if tree.size != config.pixels:
            raise InputError(f"tree has {tree.size} nodes but the images have {config.pixels} pixels")
        self.config = config
        h, d, k = config.hidden, config.pixels, config.categories
        self.register_buffer("order", torch.as_tensor(tree.order, dtype=torch.long))
        self.register_buffer("parent", torch.as_tensor(tree.parent, dtype=torch.long))
        self.root_logits = nn.Parameter(torch.zeros(h))
        self.transition_logits = nn.Parameter(torch.zeros(d - 1, h, h))
        """Row ``k - 1``: ``log p(z_k | z_parent(k))`` of node ``k >= 1``, indexed [parent state, child state]."""
        self.emission_logits = nn.Parameter(torch.zeros(d, h, k))
        """``log p(x_k | z_k)`` of node ``k`` (tree node order), indexed [state, value]."""
        self._levels = tree.level_starts.tolist()

    @property
    def tree(self) -> RootedTree:
        return RootedTree(order=self.order.cpu().numpy(), parent=self.parent.cpu().numpy())

    def initialize(self, pixels: torch.Tensor, generator: torch.Generator, noise: float = 1.0) -> None:
        """Start from each pixel's smoothed histogram in ``pixels`` (N, D), perturbed per latent state."""
        x = self._checked(pixels)[:, self.order]
        k = self.config.categories
        counts = torch.zeros(x.shape[1], k).scatter_add_(1, x.T.contiguous(), torch.ones(x.T.shape))
        histogram = (counts + 0.5) / (counts.sum(1, keepdim=True) + 0.5 * k)
        h = self.config.hidden
        with torch.no_grad():
            shape = self.emission_logits.shape
            self.emission_logits.copy_(histogram.log()[:, None, :] + noise * torch.randn(shape, generator=generator))
            self.transition_logits.copy_(0.1 * torch.randn(self.transition_logits.shape, generator=generator)
                                         + 2.0 * torch.eye(h))
            self.root_logits.zero_()

    def log_likelihood(self, pixels: torch.Tensor, summed_out: torch.Tensor | None = None) -> torch.Tensor:
        """``log p(x)`` in nats of each image of ``pixels`` (B, D) integer values in [0, categories); with
        ``summed_out`` (D,) bool, the marginal of the other pixels (those pixels' values are ignored)."""
        x = self._checked(pixels)[:, self.order]
        batch = x.shape[0]
        log_emission = torch.log_softmax(self.emission_logits, -1).transpose(1, 2)
        inside = log_emission[torch.arange(x.shape[1], device=x.device)[None, :], x]  # (B, D, H)
        if summed_out is not None:
            inside = inside.masked_fill(summed_out.to(x.device)[self.order][None, :, None], 0.0)
        transition = torch.softmax(self.transition_logits, -1)
        levels = self._levels
        incoming = None
        for depth in range(len(levels) - 2, 0, -1):
            start, stop = levels[depth], levels[depth + 1]
            level = inside[:, start:stop] if incoming is None else inside[:, start:stop] + incoming
            peak = level.amax(-1, keepdim=True).detach()
            message = torch.einsum("bnc,npc->bnp", (level - peak).exp(), transition[start - 1 : stop - 1])
            message = message.log() + peak
            above = levels[depth - 1]
            incoming = torch.zeros(batch, start - above, message.shape[-1], dtype=message.dtype, device=x.device)
            incoming = incoming.index_add(1, self.parent[start:stop] - above, message)
        root = inside[:, 0] if incoming is None else inside[:, 0] + incoming[:, 0]
        return torch.logsumexp(root + torch.log_softmax(self.root_logits, -1), -1)

    def bits_per_dim(self, pixels: torch.Tensor) -> torch.Tensor:
        """Mean negative log2-likelihood per pixel of each image."""
        return -self.log_likelihood(pixels) / (self.config.pixels * math.log(2))

    def forward(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training output: ``{"bpd": per-image bits per dimension}``."""
        return {"bpd": self.bits_per_dim(pixels)}

    def probabilities(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalized (root prior (H,), transitions (D-1, H, H), emissions (D, H, K)) in float32."""
        return (torch.softmax(self.root_logits.float(), -1), torch.softmax(self.transition_logits.float(), -1),
                torch.softmax(self.emission_logits.float(), -1))

    def _checked(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.ndim != 2 or pixels.shape[1] != self.config.pixels:
            raise InputError(f"expected (batch, {self.config.pixels}) pixels, got shape {tuple(pixels.shape)}")
        if pixels.dtype.is_floating_point:
            raise InputError("pixels must be integers")
        x = pixels.long()
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.config.categories):
            raise InputError(f"pixel values must be in [0, {self.config.categories})")
        return x


def circuit_with_probabilities(config: HCLTConfig, tree: RootedTree, root: np.ndarray, transition: np.ndarray,
                               emission: np.ndarray) -> HiddenChowLiuTree:
    """An HCLT (in eval mode) whose parameters are the given positive (unnormalized) probability tables,
    e.g. a codec's exact coding tables, for measuring their likelihood."""
    model = HiddenChowLiuTree(config, tree)
    with torch.no_grad():
        for logits, table in ((model.root_logits, root), (model.transition_logits, transition),
                              (model.emission_logits, emission)):
            logits.copy_(torch.from_numpy(np.log(table)))
    return model.eval()
