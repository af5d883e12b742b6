"""Entropy-coding throughput and size: our constriction backend vs compressai's rANS coder.

Both code the same Kodak-sized hyperprior latent (M=192 x 32 x 48 = 294,912 Gaussian residuals
``q = round(y - mu)``, scales log-uniform in [0.11, 20], means ~ N(0, 5)) with their own 64-level
Gaussian scale tables. Timed: the coder call from integer symbols + table indexes to bytes and back
(compressai's cdf lists are precomputed; its ``.tolist()`` conversions, which its API requires, are
included). Index computation and table construction are reported separately.

    python benchmarks/entropy_throughput.py [--json out.json] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from compressai.ans import RansDecoder, RansEncoder
from compressai.entropy_models import GaussianConditional
from compressai.models.base import get_scale_table
from scipy.special import ndtr

from neuralcodec.entropy import SymbolDecoder, SymbolEncoder, gaussian_scale_tables, scale_to_index

SHAPE = (192, 32, 48)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def make_latent(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.uniform(np.log(0.11), np.log(20.0), SHAPE))
    means = rng.normal(0.0, 5.0, SHAPE)
    y = means + scales * rng.normal(0.0, 1.0, SHAPE)
    return np.rint(y - means).astype(np.int32), scales


class Ours:
    name = "ours (constriction ANS)"

    def __init__(self, q: np.ndarray, scales: np.ndarray) -> None:
        self.build_s, self.tables = timed(gaussian_scale_tables)
        self.index_s, self.indexes = timed(lambda: scale_to_index(scales))
        self.q = q
        self.ideal_bits = self._encoder().ideal_bits

    def _encoder(self) -> SymbolEncoder:
        encoder = SymbolEncoder()
        encoder.encode_with_tables(self.q, self.indexes, self.tables)
        return encoder

    def encode(self) -> bytes:
        return self._encoder().finish()

    def decode(self, data: bytes) -> np.ndarray:
        decoder = SymbolDecoder(data)
        out = decoder.decode_with_tables(self.indexes, self.tables)
        decoder.assert_exhausted()
        return out


class CompressAI:
    """Timed with the numpy <-> list conversions its API needs (as in ``GaussianConditional.compress``)."""

    name = "compressai rANS"

    def __init__(self, q: np.ndarray, scales: np.ndarray) -> None:
        gc = GaussianConditional(None)
        self.build_s, _ = timed(lambda: gc.update_scale_table(get_scale_table()))
        scales_t = torch.from_numpy(scales).float()
        self.index_s, indexes = timed(lambda: gc.build_indexes(scales_t))
        self.indexes = indexes.reshape(-1).int().numpy()
        self.q = q.reshape(-1)
        self.cdf = gc._quantized_cdf.tolist()
        self.cdf_np = gc._quantized_cdf.numpy().astype(np.int64)
        self.lengths = gc._cdf_length.reshape(-1).int().tolist()
        self.offsets = gc._offset.reshape(-1).int().tolist()
        self.ideal_bits = self._ideal_bits(gc)

    def encode(self) -> bytes:
        return RansEncoder().encode_with_indexes(
            self.q.tolist(), self.indexes.tolist(), self.cdf, self.lengths, self.offsets
        )

    def decode(self, data: bytes) -> np.ndarray:
        out = RansDecoder().decode_with_indexes(data, self.indexes.tolist(), self.cdf, self.lengths, self.offsets)
        return np.asarray(out, dtype=np.int32)

    def lists_precomputed(self) -> CompressAIRaw:
        return CompressAIRaw(self)

    def _ideal_bits(self, gc: GaussianConditional) -> float:
        """-log2 p under compressai's 16-bit tables (escaped symbols: the escape entry only)."""
        entry = self.q - gc._offset.numpy()[self.indexes]
        support = gc._cdf_length.numpy()[self.indexes] - 2
        entry = np.where((entry >= 0) & (entry < support), entry, support)
        freq = self.cdf_np[self.indexes, entry + 1] - self.cdf_np[self.indexes, entry]
        return float((gc.entropy_coder_precision - np.log2(freq)).sum())


class CompressAIRaw:
    """Only the C++ calls: symbol and index lists prepared outside the timing, list output kept."""

    name = "compressai rANS, raw lists"

    def __init__(self, base: CompressAI) -> None:
        self.base, self.build_s, self.index_s, self.ideal_bits = base, base.build_s, base.index_s, base.ideal_bits
        self.q_list, self.index_list = base.q.tolist(), base.indexes.tolist()

    def encode(self) -> bytes:
        b = self.base
        return RansEncoder().encode_with_indexes(self.q_list, self.index_list, b.cdf, b.lengths, b.offsets)

    def decode(self, data: bytes) -> list[int]:
        b = self.base
        return RansDecoder().decode_with_indexes(data, self.index_list, b.cdf, b.lengths, b.offsets)


def continuous_bits(q: np.ndarray, scales: np.ndarray) -> float:
    """-log2 of the discretized Gaussian with the exact (unsnapped) scale."""
    return float(-np.log2(ndtr((q + 0.5) / scales) - ndtr((q - 0.5) / scales)).sum())


def run(repeats: int, seed: int) -> dict[str, Any]:
    q, scales = make_latent(seed)
    n = q.size
    theirs = CompressAI(q, scales)
    coders = [Ours(q, scales), theirs, theirs.lists_precomputed()]
    times: dict[str, dict[str, list[float]]] = {c.name: {"encode": [], "decode": []} for c in coders}
    sizes: dict[str, int] = {}
    for r in range(repeats):
        for c in coders if r % 2 == 0 else coders[::-1]:
            enc_s, data = timed(c.encode)
            dec_s, out = timed(lambda: c.decode(data))
            if not np.array_equal(np.asarray(out).reshape(-1), q.reshape(-1)):
                raise SystemExit(f"{c.name}: decoded symbols differ")
            times[c.name]["encode"].append(enc_s)
            times[c.name]["decode"].append(dec_s)
            sizes[c.name] = len(data)
    cont = continuous_bits(q, scales)
    results = {}
    for c in coders:
        enc, dec = (statistics.median(times[c.name][k]) for k in ("encode", "decode"))
        results[c.name] = {
            "encode_msym_s": n / enc / 1e6,
            "decode_msym_s": n / dec / 1e6,
            "encode_s_all": times[c.name]["encode"],
            "decode_s_all": times[c.name]["decode"],
            "bytes": sizes[c.name],
            "ideal_bits_own_model": c.ideal_bits,
            "overhead_vs_own_model": 8 * sizes[c.name] / c.ideal_bits - 1,
            "overhead_vs_continuous": 8 * sizes[c.name] / cont - 1,
            "table_build_s": c.build_s,
            "index_s": c.index_s,
        }
    return {
        "symbols": n,
        "repeats": repeats,
        "continuous_ideal_bits": cont,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "coders": results,
    }


def report(res: dict[str, Any]) -> str:
    ours = res["coders"][Ours.name]
    lines = [
        f"{res['symbols']} Gaussian symbols, median of {res['repeats']} repeats ({res['machine']['cpus']} CPUs)",
        f"{'coder':34s} {'enc Msym/s':>10s} {'dec Msym/s':>10s} {'bytes':>8s} {'vs own -log2p':>13s}"
        f" {'vs continuous':>13s} {'index ms':>9s} {'tables s':>8s}",
    ]
    for name, r in res["coders"].items():
        lines.append(
            f"{name:34s} {r['encode_msym_s']:10.2f} {r['decode_msym_s']:10.2f} {r['bytes']:8d}"
            f" {100 * r['overhead_vs_own_model']:12.3f}% {100 * r['overhead_vs_continuous']:12.3f}%"
            f" {1e3 * r['index_s']:9.2f} {r['table_build_s']:8.3f}"
        )
    for name in (CompressAI.name, CompressAIRaw.name):
        theirs = res["coders"][name]
        lines.append(
            f"{'ours / ' + name:34s} {ours['encode_msym_s'] / theirs['encode_msym_s']:10.2f}"
            f" {ours['decode_msym_s'] / theirs['decode_msym_s']:10.2f} {ours['bytes'] / theirs['bytes']:8.4f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    res = run(args.repeats, args.seed)
    print(report(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
