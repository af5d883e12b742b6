"""Exact, deterministic conditionals of an HCLT for entropy coding, with O(1) tree work per pixel.

Pixels are coded in depth-first pre-order of the tree. When node ``a`` is coded, the pixels already
known are exactly those outside its subtree that precede it, so ``p(z_a | x_<a)`` needs only

* the *down* message of its parent (evidence outside the parent's subtree: fixed while inside it),
* the parent's own pixel and the *up* messages of the parent's already-finished child subtrees.

Each node therefore costs one ``H x H`` product on entering (its prior), one ``H x K`` product (the pmf
of its pixel) and one ``H x H`` product when its subtree is finished (its up message): constant work
per pixel, independent of the image size, instead of the naive pass over the whole tree per pixel
(``naive_conditionals`` below, kept as the reference and the benchmark baseline). Less where it is not
needed: no pmf for a pixel both sides already know (``given``), no up message once every pixel has been
entered (in a chain, none at all), and an observed pixel's message is a row of a precomputed table.

Determinism on every machine: all parameters are fp16 probabilities scaled by 2**24 (exact integers),
every message is renormalized to integers below 2**20 with IEEE-exact operations (max, multiply,
divide, floor), and every product is a sum of integer products below 2**53, which float64 computes
exactly in any summation order. So BLAS, thread count and device cannot change a single value.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from neuralcodec.codecs.lossless.chow_liu import RootedTree
from neuralcodec.errors import InputError

PARAMETER_BITS = 24
"""Parameters are fp16 probabilities times 2**24: integers in [1, 2**24] (fp16's smallest step is 2**-24)."""
MESSAGE_BITS = 20
"""Messages are renormalized to integers in [0, 2**20] (their maximum is 2**20 or 2**20 - 1)."""
MAX_CODING_HIDDEN = 256
"""Largest latent size for which every product stays below 2**53 (20 + 24 + 8 bits)."""

SymbolSource = Callable[[int, np.ndarray | None, np.ndarray], np.ndarray]
"""``(pixel index, integer pmfs (G, K), rows (B,)) -> pixel values (B,)``: image ``b`` has pmf ``rows[b]``;
encodes (returns the known values) or decodes. The pmfs are None for pixels the source knows already."""


def _renormalized(values: np.ndarray) -> np.ndarray:
    """Rows scaled so their maximum is ~2**MESSAGE_BITS, floored to integers (exact, deterministic)."""
    peak = values.max(-1, keepdims=True)
    return np.floor(values * (float(1 << MESSAGE_BITS) / peak))


@dataclass(frozen=True)
class CodingTables:
    """An HCLT's parameters as exact integers (float64 arrays) for coding."""

    root: np.ndarray
    """(H,) prior of the root's latent."""
    transition: np.ndarray
    """(D-1, H, H): row ``k - 1`` is ``p(z_k | z_parent)`` of node ``k``, [parent state, child state]."""
    emission: np.ndarray
    """(D, H, K): ``p(x_k | z_k)`` of node ``k`` [state, value]."""
    tree: RootedTree

    @classmethod
    def from_probabilities(
        cls, root: torch.Tensor, transition: torch.Tensor, emission: torch.Tensor, tree: RootedTree
    ) -> "CodingTables":
        """Tables from fp16 probabilities (values in (0, 1]; smaller ones are raised to 2**-24)."""
        tensors = []
        for name, t in (("root", root), ("transition", transition), ("emission", emission)):
            if t.dtype != torch.float16:
                raise InputError(f"coding tables need fp16 probabilities, {name} is {t.dtype}")
            scaled = np.maximum(t.double().numpy(), 2.0**-PARAMETER_BITS) * float(1 << PARAMETER_BITS)
            if not (np.isfinite(scaled).all() and scaled.max() <= 1 << PARAMETER_BITS):
                raise InputError(f"{name} probabilities must be finite and at most 1")
            if name == "emission" and scaled.sum(-1).max() > 1 << (PARAMETER_BITS + 1):
                raise InputError("emission probabilities must sum to at most 2 per latent state")
            tensors.append(scaled)
        hidden = tensors[0].shape[0]
        if hidden > MAX_CODING_HIDDEN:
            raise InputError(f"coding supports at most {MAX_CODING_HIDDEN} latent states, got {hidden}")
        d = tree.size
        if tensors[1].shape != (d - 1, hidden, hidden) or tensors[2].shape[:2] != (d, hidden):
            raise InputError("transition/emission shapes do not match the tree and the root prior")
        return cls(tensors[0], tensors[1], tensors[2], tree)

    @property
    def categories(self) -> int:
        return self.emission.shape[2]

    @cached_property
    def cumulative_emission(self) -> np.ndarray:
        """(D, H, K) running sums of the emissions over the values: ``prior @ cumulative_emission[k]`` is the
        pmf's running sum, exactly (every row sums to at most 2**25, so every product stays below 2**53)."""
        return np.cumsum(self.emission, axis=-1)

    @cached_property
    def evidence(self) -> np.ndarray:
        """(D, K, H): row ``[k, v]`` is the renormalized message ``p(x_k = v | z_k)`` of an observed pixel."""
        return _renormalized(self.emission.transpose(0, 2, 1))


def _walk(tree: RootedTree) -> Iterator[tuple[bool, int]]:
    """Depth-first events: ``(True, node)`` on entering a node, ``(False, node)`` when its subtree is done.
    The events after the last entering one are left out: their up messages would reach no pixel."""
    kids = tree.children()
    stack: list[tuple[int, bool]] = [(0, True)]
    events = []
    while stack:
        node, entering = stack.pop()
        events.append((entering, node))
        if entering:
            stack.append((node, False))
            stack.extend((kid, True) for kid in reversed(kids[node]))
    last = max(i for i, (entering, _) in enumerate(events) if entering)
    yield from events[: last + 1]


class _RowGroups:
    """Images that agree on every pixel coded so far, as groups: they share every message, so messages are
    computed once per group. The partition only refines; a message made under an older partition is
    re-indexed when it is next used (``aligned``)."""

    def __init__(self, batch: int, categories: int) -> None:
        self.categories = categories
        self.of_row = np.zeros(batch, dtype=np.intp)
        self.first_rows = np.zeros(min(batch, 1), dtype=np.intp)

    @property
    def count(self) -> int:
        return len(self.first_rows)

    def split(self, values: np.ndarray) -> np.ndarray:
        """Refine by this pixel's ``values`` (B,); returns each group's value. Past half as many groups as
        images, every image becomes its own group (sharing no longer pays for the bookkeeping)."""
        batch = len(self.of_row)
        if self.count < batch:
            _, first_rows, of_row = np.unique(self.of_row * self.categories + values, return_index=True,
                                              return_inverse=True)
            if len(first_rows) > batch // 2:
                first_rows = of_row = np.arange(batch)
            if len(first_rows) > self.count:  # (else the groups, and their order, are unchanged)
                self.first_rows, self.of_row = first_rows, of_row
        return values[self.first_rows]

    def aligned(self, message: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """``message`` (rows per group of the partition it was made under, that partition's ``of_row``)
        as rows per current group."""
        rows, of_row = message
        return rows if of_row is self.of_row else rows[of_row[self.first_rows]]


def code_pixels(tables: CodingTables, batch: int, symbols: SymbolSource, given: Collection[int] = (),
                cumulative: bool = False) -> None:
    """Run the depth-first pass over ``batch`` images, asking ``symbols`` for each pixel given its pmfs.

    ``symbols(pixel, pmf, rows)`` receives the pixel's flat index, the unnormalized integer pmfs (G, K) of
    its value given everything coded before it, one per group of images that agree on every pixel so far,
    and each image's group (B,); it returns the B values (known when encoding, decoded when decoding).
    Encoder and decoder compute bit-identical pmfs; images that are alike cost one pmf, not one each.
    Pixels in ``given`` are known to both sides without coding (side information such as context
    classes): they condition what follows, but their pmf is not computed (``symbols`` receives None).
    With ``cumulative``, ``symbols`` receives the pmfs' running sums over the values instead (exact).
    """
    order, parent = tables.tree.order, tables.tree.parent
    groups = _RowGroups(batch, tables.emission.shape[2])
    emission = tables.cumulative_emission if cumulative else tables.emission
    down: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    inside: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for entering, node in _walk(tables.tree):
        if entering:
            if node == 0:
                prior = np.broadcast_to(tables.root, (groups.count, len(tables.root)))
            else:
                up = parent[node]
                prior = _renormalized(groups.aligned(down[up]) * groups.aligned(inside[up])) @ tables.transition[node - 1]
            below = _renormalized(prior)
            pixel = int(order[node])
            pmf = None if pixel in given else below @ emission[node]
            values = np.asarray(symbols(pixel, pmf, groups.of_row))
            if values.shape != (batch,):
                raise InputError(f"expected {batch} values for pixel {pixel}, got shape {values.shape}")
            down[node] = (below, groups.of_row)
            values = groups.split(values)
            inside[node] = (tables.evidence[node][values], groups.of_row)
        else:
            del down[node]
            if node:
                message = groups.aligned(inside.pop(node)) @ tables.transition[node - 1].T
                up = parent[node]
                inside[up] = (_renormalized(groups.aligned(inside[up]) * _renormalized(message)), groups.of_row)


def naive_conditionals(tables: CodingTables, pixels: np.ndarray) -> np.ndarray:
    """Reference: the same pmfs (float64, normalized) by a full upward pass over the tree per pixel.

    Returns (B, D, K) conditionals ``p(x_i = v | pixels before i in pre-order)``, indexed by pixel.
    Costs O(D) tree operations per pixel (O(D^2) per image): the baseline for the incremental pass.
    """
    tree = tables.tree
    x = np.asarray(pixels, dtype=np.int64)[:, tree.order]
    kids = tree.children()
    out = np.empty((x.shape[0], tree.size, tables.categories))
    observed = np.zeros(tree.size, dtype=bool)
    for target in tree.preorder():
        out[:, tree.order[target]] = _target_pmf(tables, x, observed, int(target), kids)
        observed[target] = True
    return out


def _target_pmf(tables: CodingTables, x: np.ndarray, observed: np.ndarray, target: int,
                kids: list[list[int]]) -> np.ndarray:
    """Normalized pmf of node ``target``'s pixel given the observed pixels (full recomputation)."""
    batch, hidden = x.shape[0], tables.root.shape[0]
    parent = tables.tree.parent

    def upward(node: int, skip: int) -> np.ndarray:
        if observed[node] and node != target:
            value = tables.emission[node][:, x[:, node]].T
        else:
            value = np.ones((batch, hidden))
        for kid in kids[node]:
            if kid != skip:
                message = upward(kid, -1) @ tables.transition[kid - 1].T
                value = value * message / message.sum(-1, keepdims=True)
        return value

    below = upward(target, -1)
    path = [target]
    while parent[path[-1]] != -1:
        path.append(int(parent[path[-1]]))
    incoming = np.broadcast_to(tables.root / tables.root.sum(), (batch, hidden))
    for above, node in zip(path[::-1], path[::-1][1:]):
        incoming = incoming * upward(above, node)
        incoming = incoming @ tables.transition[node - 1]
        incoming = incoming / incoming.sum(-1, keepdims=True)
    latent = incoming * below
    pmf = latent @ tables.emission[target]
    return pmf / pmf.sum(-1, keepdims=True)
