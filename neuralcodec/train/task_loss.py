"""Task-aware distortion: how differently a frozen task network sees the original and the reconstruction.

``D_task(x, x_hat) = 1 - cos(f(x), f(x_hat))`` per sample, where ``f`` is any frozen torch module
mapping an image batch to features (a face embedder, a classifier's logits, a feature extractor);
optionally also on intermediate activations. The codec's loss adds it to the pixel distortion:
``L = R + lambda * (255^2 * MSE + alpha * D_task)`` (Xiao et al., "Identity Preserving Loss for
Learned Image Compression", CVPR-W 2022, use the same form with a face recognizer as ``f``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

InputAdapter = Callable[[torch.Tensor], torch.Tensor]


def rgb_to_gray(x: torch.Tensor) -> torch.Tensor:
    """``N x 3 x H x W`` -> ``N x 1 x H x W`` by channel mean (grey images are coded as three equal channels)."""
    return x.mean(dim=1, keepdim=True)


def freeze(network: nn.Module) -> nn.Module:
    """``network`` in eval mode with every parameter excluded from gradients (batch-norm statistics fixed)."""
    network.eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network


class TaskDistortion(nn.Module):
    """Per-sample cosine distance between a frozen network's outputs (and chosen intermediate features)
    on ``x`` and on ``x_hat``; zero when ``x_hat == x``. Gradients flow to ``x_hat`` only.

    ``to_input`` maps codec images (``N x C x H x W`` in [0, 1]) to what the network takes;
    ``layers`` names submodules whose outputs are compared too (averaged with the final output).
    The network is stored frozen and stays in eval mode even when the codec trains.
    """

    def __init__(self, network: nn.Module, to_input: InputAdapter | None = None, layers: Sequence[str] = ()) -> None:
        super().__init__()
        self.network = freeze(network)
        self.to_input = to_input or (lambda x: x)
        self.layers = tuple(layers)
        modules = dict(network.named_modules())
        unknown = [name for name in self.layers if name not in modules]
        if unknown:
            raise ValueError(f"task network has no layers {unknown}")
        self._captured: list[torch.Tensor] = []
        for name in self.layers:
            modules[name].register_forward_hook(lambda _m, _i, output: self._captured.append(output))

    def train(self, mode: bool = True) -> TaskDistortion:
        """The wrapper follows ``mode`` but the frozen network always stays in eval mode."""
        super().train(mode)
        self.network.eval()
        return self

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        self._captured = []
        output = self.network(self.to_input(x))
        return [*self._captured, output]

    def forward(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``(N,)`` mean over compared features of ``1 - cos`` between the network on ``x`` and ``x_hat``."""
        self.network.to(x.device)  # the loop moves the codec, not its loss; a no-op once in place
        with torch.no_grad():
            reference = [f.detach() for f in self._features(x)]
        decoded = self._features(x_hat)
        distances = [1 - F.cosine_similarity(a.flatten(1).float(), b.flatten(1).float(), dim=1)
                     for a, b in zip(decoded, reference)]
        return torch.stack(distances).mean(dim=0)
