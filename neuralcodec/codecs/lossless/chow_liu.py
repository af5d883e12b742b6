"""Chow-Liu trees over pixel variables: pairwise mutual information, maximum spanning tree, rooting.

The tree is the structure of a Hidden Chow-Liu Tree (see ``hclt``). Nodes are renumbered in
breadth-first order from a root at the tree's center (so the depth, and with it the number of
sequential steps of a likelihood pass, is as small as the tree allows): node ``k`` is pixel
``order[k]``, ``parent[k] < k`` for every node but the root (node 0, ``parent[0] == -1``), and the nodes
of each depth form the contiguous range ``level_starts[d] : level_starts[d + 1]``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.csgraph import minimum_spanning_tree

from neuralcodec.errors import InputError


@dataclass(frozen=True)
class RootedTree:
    """A spanning tree of ``len(order)`` pixels, numbered breadth-first from its root."""

    order: np.ndarray
    """``order[k]``: the pixel (flat index) of node ``k``."""
    parent: np.ndarray
    """``parent[k]``: node index of the parent of node ``k``; -1 for the root (node 0)."""

    def __post_init__(self) -> None:
        n = len(self.order)
        if n < 1 or sorted(self.order.tolist()) != list(range(n)):
            raise InputError("tree order must be a permutation of the pixels")
        if self.parent.shape != (n,) or self.parent[0] != -1 or (n > 1 and not (self.parent[1:] < np.arange(1, n)).all()):
            raise InputError("tree parents must precede their children (breadth-first numbering from node 0)")
        if n > 1 and self.parent[1:].min() < 0:
            raise InputError("only node 0 may be a root")

    @property
    def size(self) -> int:
        return len(self.order)

    @property
    def depth(self) -> np.ndarray:
        """Distance of every node from the root."""
        depth = np.zeros(self.size, dtype=np.int64)
        for k in range(1, self.size):
            depth[k] = depth[self.parent[k]] + 1
        return depth

    @property
    def level_starts(self) -> np.ndarray:
        """Start of each depth's node range, plus the end (length = height + 2)."""
        depth = self.depth
        if (np.diff(depth) < 0).any():
            raise InputError("tree nodes are not in breadth-first order")
        return np.searchsorted(depth, np.arange(depth[-1] + 2))

    def children(self) -> list[list[int]]:
        """Children of every node, in increasing node order."""
        kids: list[list[int]] = [[] for _ in range(self.size)]
        for k in range(1, self.size):
            kids[self.parent[k]].append(k)
        return kids

    def preorder(self) -> np.ndarray:
        """Depth-first pre-order of the nodes (every node before its descendants)."""
        kids = self.children()
        out, stack = [], [0]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(kids[node]))
        return np.asarray(out, dtype=np.int64)


def mutual_information(pixels: torch.Tensor, bins: int = 8) -> torch.Tensor:
    """(D, D) mutual information (nats) between pixels of ``pixels`` (N, D) in [0, 256), on ``bins`` levels."""
    if pixels.ndim != 2 or pixels.shape[0] < 2:
        raise InputError(f"need an (N >= 2, D) array of pixels, got shape {tuple(pixels.shape)}")
    n, d = pixels.shape
    binned = (pixels.long() * bins) // 256
    one_hot = torch.nn.functional.one_hot(binned, bins).reshape(n, d * bins).float()
    joint = (one_hot.T @ one_hot).double().reshape(d, bins, d, bins).permute(0, 2, 1, 3) / n
    marginal = one_hot.double().mean(0).reshape(d, bins)
    independent = marginal[:, None, :, None] * marginal[None, :, None, :]
    ratio = torch.where(joint > 0, joint / independent.clamp_min(1e-300), torch.ones_like(joint))
    return (joint * ratio.log()).sum(dim=(2, 3)).clamp_min(0)


def chow_liu_tree(pixels: torch.Tensor, width: int, bins: int = 8) -> RootedTree:
    """The maximum-mutual-information spanning tree of the pixels of ``pixels`` (N, D) of images ``width`` wide.

    Ties (e.g. between always-constant border pixels, whose mutual information is 0) are broken
    towards spatially close pixels, so such pixels hang off their neighbours.
    """
    d = pixels.shape[1]
    if d % width:
        raise InputError(f"{d} pixels are not rows of width {width}")
    info = mutual_information(pixels, bins).numpy()
    rows, cols = np.divmod(np.arange(d), width)
    distance = np.hypot(rows[:, None] - rows[None, :], cols[:, None] - cols[None, :])
    weight = (info.max() - info) + 1e-3 + 1e-6 * distance
    np.fill_diagonal(weight, 0)
    spanning = minimum_spanning_tree(weight).tocoo()
    adjacency: list[list[int]] = [[] for _ in range(d)]
    for a, b in zip(spanning.row.tolist(), spanning.col.tolist()):
        adjacency[a].append(b)
        adjacency[b].append(a)
    return root_at_center(adjacency)


def _bfs(adjacency: list[list[int]], start: int) -> tuple[list[int], list[int]]:
    """Breadth-first visiting order and parents (-1 for ``start``)."""
    parent = [-2] * len(adjacency)
    parent[start] = -1
    order, queue = [], deque([start])
    while queue:
        node = queue.popleft()
        order.append(node)
        for nxt in sorted(adjacency[node]):
            if parent[nxt] == -2:
                parent[nxt] = node
                queue.append(nxt)
    if len(order) != len(adjacency):
        raise InputError("the graph is not connected")
    return order, parent


def root_at_center(adjacency: list[list[int]]) -> RootedTree:
    """Root a tree (adjacency lists over pixels) at the middle of its longest path; number it breadth-first."""
    far, _ = _bfs(adjacency, 0)
    order, parent = _bfs(adjacency, far[-1])
    path = [order[-1]]
    while parent[path[-1]] != -1:
        path.append(parent[path[-1]])
    order, parent = _bfs(adjacency, path[len(path) // 2])
    node_of = {pixel: k for k, pixel in enumerate(order)}
    parents = np.array([-1] + [node_of[parent[p]] for p in order[1:]], dtype=np.int64)
    return RootedTree(order=np.asarray(order, dtype=np.int64), parent=parents)
